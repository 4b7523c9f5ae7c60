with source as (
    select * from {{ source('raw', 'orders') }}
),

renamed as (
    select
        country,
        date,
        order_id,
        user_id,
        created_at_utc,
        created_at_local,
        gmv,
        currency,
        category
    from source
),

final as (
    select * from renamed
)

select * from final
