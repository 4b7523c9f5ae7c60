{{ config(pre_hook="{{ delete_lookback(var('outcome_window_days')) }}") }}

-- Per campaign and local send date: pushes attempted and delivered, opens, attributed conversions and GMV,
-- coupon redemptions and discounts, opt-outs. Recent days are revised as outcomes arrive (`is_mature`).
with outcomes as (
    select * from {{ ref('int_push_outcomes') }}
    where {{ in_lookback(var('outcome_window_days')) }}
),

final as (
    select
        country,
        date,
        campaign_id,
        count(*) as pushes,
        count(*) filter (where is_delivered) as delivered,
        count(*) filter (where opened) as opens,
        count(*) filter (where opened) / nullif(count(*) filter (where is_delivered), 0) as open_rate,
        count(*) filter (where converted) as conversions,
        sum(attributed_gmv) as attributed_gmv,
        sum(redemptions) as redemptions,
        sum(coupon_discount) as coupon_discount,
        count(*) filter (where opted_out) as opt_outs,
        bool_and(is_mature) as is_mature
    from outcomes
    group by all
)

select * from final
