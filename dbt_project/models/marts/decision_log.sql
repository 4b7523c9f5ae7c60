{{ config(pre_hook="{{ delete_lookback(var('maturity_days')) }}") }}

-- One row per decision with the context the policy saw (user_features of the day before), the chosen action
-- and its propensity, and the outcomes observed so far over the decision's window (the plan's week plus the
-- attribution days): pushes delivered and opened, attributed conversions, coupon cost, opt-out, and the
-- user's net revenue over the window (take rate x GMV minus coupon cost, organic orders included, so that it
-- compares with holdout users). `is_mature` says the window has closed; `open_is_mature` says the plan's week is
-- over (opens come within hours of a push, so the open rate is final then). Training and off-policy evaluation
-- use mature rows only.
with decisions as (
    select * from {{ ref('stg_decisions') }}
    where {{ in_lookback(var('maturity_days')) }}
),

pushes as (
    select
        trace_id,
        count(*) filter (where is_delivered) as pushes_delivered,
        count(*) filter (where opened) as opens,
        bool_or(converted) as converted,
        sum(redemptions) as redemptions,
        sum(coupon_discount) as coupon_discount,
        bool_or(opted_out) as opted_out
    from {{ ref('int_push_outcomes') }}
    where {{ in_lookback(var('maturity_days')) }}
    group by all
),

window_activity as (
    select
        decisions.trace_id,
        sum(activity.orders) as orders,
        sum(activity.gmv) as gmv,
        sum(activity.coupon_discount) as user_coupon_discount
    from decisions
    join (
        select * from {{ ref('int_user_activity_daily') }} where {{ in_lookback(var('maturity_days')) }}
    ) as activity
        on activity.country = decisions.country
        and activity.user_id = decisions.user_id
        and activity.date between decisions.date and decisions.date + {{ var('maturity_days') }} - 1
    group by all
),

context as (
    select * from {{ ref('user_features') }}
    where {{ in_lookback(var('maturity_days') + 1) }}
),

final as (
    select
        decisions.*,
        coalesce(pushes.pushes_delivered, 0) as pushes_delivered,
        coalesce(pushes.opens, 0) as opens,
        coalesce(pushes.converted, false) as converted,
        coalesce(pushes.redemptions, 0) as redemptions,
        coalesce(pushes.coupon_discount, 0) as coupon_cost,
        coalesce(pushes.opted_out, false) as opted_out,
        coalesce(window_activity.orders, 0) as window_orders,
        coalesce(window_activity.gmv, 0) as window_gmv,
        coalesce(pushes.opens / nullif(pushes.pushes_delivered, 0), 0) as reward_open,
        case when coalesce(pushes.converted, false) then 1.0 else 0.0 end as reward_conversion,
        {{ take_rate('decisions.country') }} * coalesce(window_activity.gmv, 0)
            - coalesce(window_activity.user_coupon_discount, 0) as reward_net_revenue,
        decisions.date + {{ var('maturity_days') }} <= {{ as_of_date() }} as is_mature,
        decisions.date + {{ var('plan_days') }} <= {{ as_of_date() }} as open_is_mature,
        context.segment as context_segment
    from decisions
    left join pushes using (trace_id)
    left join window_activity using (trace_id)
    left join context
        on context.country = decisions.country
        and context.user_id = decisions.user_id
        and context.date = decisions.date - 1
)

select * from final
