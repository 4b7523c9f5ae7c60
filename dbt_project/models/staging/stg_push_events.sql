with source as (
    select * from {{ source('raw', 'push_events') }}
),

renamed as (
    select
        country,
        date,
        event_id,
        send_id,
        trace_id,
        user_id,
        event_type,
        event_at_utc,
        event_at_local
    from source
),

final as (
    select * from renamed
)

select * from final
