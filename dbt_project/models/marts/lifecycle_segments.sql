{{ config(pre_hook="{{ delete_partition('date') }}") }}

-- Lifecycle stage of every user at the end of each local day, from the users snapshot (rules in the README):
--   new      signed up within the last 30 days
--   active   ordered within 30 days or had a session within 14 days
--   at_risk  ordered within 90 days or had a session within 45 days
--   dormant  had a session or an order within 180 days
--   churned  nothing for more than 180 days (or never)
with users as (
    select * from {{ ref('stg_users') }}
    where {{ in_partition() }}
),

recency as (
    select
        country,
        date,
        user_id,
        date - signup_date as days_since_signup,
        date - last_session_date as days_since_last_session,
        date - last_order_date as days_since_last_order
    from users
),

final as (
    select
        *,
        case
            when days_since_signup <= 30 then 'new'
            when days_since_last_order <= 30 or days_since_last_session <= 14 then 'active'
            when days_since_last_order <= 90 or days_since_last_session <= 45 then 'at_risk'
            when days_since_last_order <= 180 or days_since_last_session <= 180 then 'dormant'
            else 'churned'
        end as segment
    from recency
)

select * from final
