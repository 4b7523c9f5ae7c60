with source as (
    select * from {{ source('raw', 'sessions') }}
),

renamed as (
    select
        country,
        date,
        session_id,
        user_id,
        started_at_utc,
        started_at_local,
        hour(started_at_local) as local_hour,
        hour(started_at_local) + minute(started_at_local) / 60.0 as local_time_of_day,
        isodow(started_at_local) as local_isodow,
        platform,
        category
    from source
),

final as (
    select * from renamed
)

select * from final
