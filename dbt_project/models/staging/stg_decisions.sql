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
        template_id,
        tone,
        send_hour,
        send_weekday,
        frequency,
        propensity,
        policy,
        model_name,
        model_version,
        expected_reward
    from source
    where country != '__none__'
),

final as (
    select * from renamed
)

select * from final
