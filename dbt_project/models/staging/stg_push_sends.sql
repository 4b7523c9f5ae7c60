with source as (
    select * from {{ source('raw', 'push_sends') }}
),

renamed as (
    select
        country,
        date,
        send_id,
        trace_id,
        idempotency_key,
        user_id,
        campaign_id,
        template_id,
        coupon_code,
        sent_at_utc,
        sent_at_local,
        status,
        status = 'delivered' as is_delivered,
        failure_reason
    from source
),

final as (
    select * from renamed
)

select * from final
