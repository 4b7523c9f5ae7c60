with source as (
    select * from {{ source('raw', 'users') }}
),

renamed as (
    select
        country,
        snapshot_date as date,
        user_id,
        first_name,
        signup_date,
        platform,
        region,
        timezone,
        push_opt_in,
        mp_user,
        category_interest,
        lifetime_orders,
        lifetime_gmv,
        last_session_date,
        last_order_date,
        usual_active_hour,
        weekend_activity_share
    from source
),

final as (
    select * from renamed
)

select * from final
