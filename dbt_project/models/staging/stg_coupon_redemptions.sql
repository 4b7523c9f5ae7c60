with source as (
    select * from {{ source('raw', 'coupon_redemptions') }}
),

renamed as (
    select
        country,
        date,
        redemption_id,
        order_id,
        user_id,
        trace_id,
        campaign_id,
        coupon_code,
        discount_amount,
        redeemed_at_utc
    from source
),

final as (
    select * from renamed
)

select * from final
