{{ config(pre_hook="{{ delete_lookback(var('outcome_window_days')) }}") }}

-- One row per push attempt with what followed: first open, the first order within the attribution window after
-- it (organic orders of openers included, as attribution counts them), coupon redemptions carried by the push's
-- trace and an opt-out it preceded. Outcomes arrive in later extracts, so each run rebuilds the sends of the
-- last `outcome_window_days` days; `is_mature` says the window has closed.
with sends as (
    select * from {{ ref('stg_push_sends') }}
    where {{ in_lookback(var('outcome_window_days')) }}
),

-- everything below happens on or after the sends' dates: reading that window keeps a build's cost flat as
-- history grows
opens as (
    select send_id, min(event_at_utc) as first_open_at_utc
    from {{ ref('stg_push_events') }}
    where event_type = 'open' and {{ in_lookback(var('outcome_window_days')) }}
    group by all
),

orders as (
    select country, user_id, order_id, created_at_utc, gmv from {{ ref('stg_orders') }}
    where {{ in_lookback(var('outcome_window_days')) }}
),

attributed as (
    select
        sends.send_id,
        arg_min(orders.order_id, orders.created_at_utc) as attributed_order_id,
        arg_min(orders.gmv, orders.created_at_utc) as attributed_gmv
    from sends
    join opens using (send_id)
    join orders
        on orders.country = sends.country
        and orders.user_id = sends.user_id
        and orders.created_at_utc between opens.first_open_at_utc
            and opens.first_open_at_utc + to_days({{ var('attribution_days') }})
    group by all
),

redemptions as (
    select trace_id, count(*) as redemptions, sum(discount_amount) as discount
    from {{ ref('stg_coupon_redemptions') }}
    where {{ in_lookback(var('outcome_window_days')) }}
    group by all
),

opt_outs as (
    select distinct trace_id from {{ ref('stg_opt_outs') }}
    where trace_id is not null and {{ in_lookback(var('outcome_window_days')) }}
),

final as (
    select
        sends.country,
        sends.date,
        sends.send_id,
        sends.trace_id,
        sends.idempotency_key,
        sends.user_id,
        sends.campaign_id,
        sends.template_id,
        sends.coupon_code,
        sends.sent_at_utc,
        sends.is_delivered,
        opens.first_open_at_utc is not null as opened,
        opens.first_open_at_utc,
        attributed.attributed_order_id is not null as converted,
        attributed.attributed_order_id,
        coalesce(attributed.attributed_gmv, 0) as attributed_gmv,
        -- a plan's pushes share a trace: its redemptions and opt-out are counted on the plan's first push
        case when sends.idempotency_key = sends.trace_id || '-0' then coalesce(redemptions.redemptions, 0) else 0 end
            as redemptions,
        case when sends.idempotency_key = sends.trace_id || '-0' then coalesce(redemptions.discount, 0) else 0 end
            as coupon_discount,
        opt_outs.trace_id is not null and sends.idempotency_key = sends.trace_id || '-0' as opted_out,
        sends.date + {{ var('outcome_window_days') }} <= {{ as_of_date() }} as is_mature
    from sends
    left join opens using (send_id)
    left join attributed using (send_id)
    left join redemptions using (trace_id)
    left join opt_outs using (trace_id)
)

select * from final
