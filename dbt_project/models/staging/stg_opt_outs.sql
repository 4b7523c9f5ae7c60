with source as (
    select * from {{ source('raw', 'opt_outs') }}
),

renamed as (
    select
        country,
        date,
        user_id,
        opted_out_at_utc,
        channel,
        trace_id
    from source
),

final as (
    select * from renamed
)

select * from final
