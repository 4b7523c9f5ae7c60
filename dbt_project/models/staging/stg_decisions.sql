with source as (
    select * from {{ source('pushgrowth', 'decisions') }}
),

renamed as (
    select
        country,
        date,
        trace_id,
        user_id,
        campaign_id,
        "group" as assignment_group,
        objective,
        value_proposition,
        coupon_kind,
        coupon_value,
        coupon_cap,
        template_id,
        tone,
        send_hour,
        send_weekday,
        frequency,
        propensity,
        policy,
        model_name,
        model_version,
        expected_reward,
        expected_cost,
        cost_price,
        coupons_allowed,
        free_days,
        capacity,
        window_room,
        campaign_value,
        campaign_pick,
        candidates,
        share_bandit,
        catalog_version
    from source
    where country != '__none__'
),

final as (
    select * from renamed
)

select * from final
