{{ config(pre_hook="{{ delete_partition('date') }}") }}

-- One row per user with any activity on the local day: sessions by part of day (and the sums of the sine and
-- cosine of their local time of day, which add up over days into a circular mean hour), orders, pushes, coupons.
with sessions as (
    select
        country, date, user_id,
        count(*) as sessions,
        count(*) filter (where local_hour between 6 and 10) as sessions_morning,
        count(*) filter (where local_hour between 11 and 14) as sessions_midday,
        count(*) filter (where local_hour between 15 and 18) as sessions_afternoon,
        count(*) filter (where local_hour between 19 and 22) as sessions_evening,
        count(*) filter (where local_hour >= 23 or local_hour < 6) as sessions_night,
        sum(sin(radians(15 * local_time_of_day))) as session_hour_sin,
        sum(cos(radians(15 * local_time_of_day))) as session_hour_cos
    from {{ ref('stg_sessions') }}
    where {{ in_partition() }}
    group by all
),

orders as (
    select country, date, user_id, count(*) as orders, sum(gmv) as gmv
    from {{ ref('stg_orders') }}
    where {{ in_partition() }}
    group by all
),

pushes as (
    select country, date, user_id, count(*) filter (where is_delivered) as pushes_delivered
    from {{ ref('stg_push_sends') }}
    where {{ in_partition() }}
    group by all
),

opens as (
    select country, date, user_id, count(*) as push_opens
    from {{ ref('stg_push_events') }}
    where {{ in_partition() }} and event_type = 'open'
    group by all
),

redemptions as (
    select country, date, user_id, count(*) as coupon_redemptions, sum(discount_amount) as coupon_discount
    from {{ ref('stg_coupon_redemptions') }}
    where {{ in_partition() }}
    group by all
),

keys as (
    select country, date, user_id from sessions
    union select country, date, user_id from orders
    union select country, date, user_id from pushes
    union select country, date, user_id from opens
    union select country, date, user_id from redemptions
),

final as (
    select
        keys.country,
        keys.date,
        keys.user_id,
        coalesce(sessions.sessions, 0) as sessions,
        coalesce(sessions.sessions_morning, 0) as sessions_morning,
        coalesce(sessions.sessions_midday, 0) as sessions_midday,
        coalesce(sessions.sessions_afternoon, 0) as sessions_afternoon,
        coalesce(sessions.sessions_evening, 0) as sessions_evening,
        coalesce(sessions.sessions_night, 0) as sessions_night,
        coalesce(sessions.session_hour_sin, 0) as session_hour_sin,
        coalesce(sessions.session_hour_cos, 0) as session_hour_cos,
        coalesce(orders.orders, 0) as orders,
        coalesce(orders.gmv, 0) as gmv,
        coalesce(pushes.pushes_delivered, 0) as pushes_delivered,
        coalesce(opens.push_opens, 0) as push_opens,
        coalesce(redemptions.coupon_redemptions, 0) as coupon_redemptions,
        coalesce(redemptions.coupon_discount, 0) as coupon_discount
    from keys
    left join sessions using (country, date, user_id)
    left join orders using (country, date, user_id)
    left join pushes using (country, date, user_id)
    left join opens using (country, date, user_id)
    left join redemptions using (country, date, user_id)
)

select * from final
