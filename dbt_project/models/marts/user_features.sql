{{ config(pre_hook="{{ delete_partition('date') }}") }}

-- The context a model sees for a user at the end of a local day: profile, recency, frequency, monetary value,
-- when the user is active (part of day, mean hour, weekend), push history (also per tone of wording) and coupon
-- history. Windows end on `date`.
with users as (
    select * from {{ ref('stg_users') }}
    where {{ in_partition() }}
),

segments as (
    select country, date, user_id, segment, days_since_signup, days_since_last_session, days_since_last_order
    from {{ ref('lifecycle_segments') }}
    where {{ in_partition() }}
),

activity as (
    select * from {{ ref('int_user_activity_daily') }}
    where {{ in_lookback(89) }}
),

windows as (
    select
        users.country,
        users.date,
        users.user_id,
        sum(a.sessions) filter (where a.date > users.date - 28) as sessions_28d,
        sum(a.sessions_morning) filter (where a.date > users.date - 28) as sessions_morning_28d,
        sum(a.sessions_midday) filter (where a.date > users.date - 28) as sessions_midday_28d,
        sum(a.sessions_afternoon) filter (where a.date > users.date - 28) as sessions_afternoon_28d,
        sum(a.sessions_evening) filter (where a.date > users.date - 28) as sessions_evening_28d,
        sum(a.sessions_night) filter (where a.date > users.date - 28) as sessions_night_28d,
        sum(a.sessions) filter (where a.date > users.date - 28 and isodow(a.date) >= 6) as sessions_weekend_28d,
        sum(a.session_hour_sin) filter (where a.date > users.date - 28) as session_hour_sin_28d,
        sum(a.session_hour_cos) filter (where a.date > users.date - 28) as session_hour_cos_28d,
        sum(a.orders) filter (where a.date > users.date - 28) as orders_28d,
        sum(a.gmv) filter (where a.date > users.date - 28) as gmv_28d,
        sum(a.pushes_delivered) filter (where a.date > users.date - 7) as pushes_7d,
        sum(a.pushes_delivered) filter (where a.date > users.date - 28) as pushes_28d,
        sum(a.push_opens) filter (where a.date > users.date - 28) as opens_28d,
        sum(a.coupon_redemptions) as coupon_redemptions_90d,
        sum(a.coupon_discount) as coupon_discount_90d,
        max(a.date) filter (where a.pushes_delivered > 0) as last_push_date
    from users
    left join activity as a on {{ user_window('a', 89) }}
    group by all
),

-- delivered pushes of the last 90 days by the tone of their wording, and how many of them the user had opened
-- by the end of the day (UTC midnight, before the local day ends in every country here): what each user
-- answers to (the model policy's tone prior, pushgrowth.bandit.policy)
tone_pushes as (
    select o.country, o.user_id, o.date, d.tone, o.first_open_at_utc
    from {{ ref('int_push_outcomes') }} as o
    join {{ ref('stg_decisions') }} as d on d.country = o.country and d.trace_id = o.trace_id
    where o.is_delivered and {{ in_lookback(89, 'o.date', 'o.country') }}
        and {{ in_lookback(96, 'd.date', 'd.country') }}
),

tones as (
    select
        users.country,
        users.date,
        users.user_id,
        {%- for tone in var('tones') %}
        count(t.tone) filter (where t.tone = '{{ tone }}') as tone_pushes_{{ tone }},
        count(t.tone) filter (
            where t.tone = '{{ tone }}' and t.first_open_at_utc < users.date + 1
        ) as tone_opens_{{ tone }}{{ ',' if not loop.last }}
        {%- endfor %}
    from users
    left join tone_pushes as t on {{ user_window('t', 89) }}
    group by all
),

final as (
    select
        users.country,
        users.date,
        users.user_id,
        segments.segment,
        users.platform,
        users.region,
        users.timezone,
        users.push_opt_in,
        users.mp_user,
        users.category_interest,
        segments.days_since_signup,
        segments.days_since_last_session,
        segments.days_since_last_order,
        users.lifetime_orders,
        users.lifetime_gmv,
        case when users.lifetime_orders > 0 then users.lifetime_gmv / users.lifetime_orders end as avg_order_value,
        coalesce(w.sessions_28d, 0) as sessions_28d,
        coalesce(w.orders_28d, 0) as orders_28d,
        coalesce(w.gmv_28d, 0) as gmv_28d,
        coalesce(w.sessions_morning_28d / nullif(w.sessions_28d, 0), 0) as share_sessions_morning,
        coalesce(w.sessions_midday_28d / nullif(w.sessions_28d, 0), 0) as share_sessions_midday,
        coalesce(w.sessions_afternoon_28d / nullif(w.sessions_28d, 0), 0) as share_sessions_afternoon,
        coalesce(w.sessions_evening_28d / nullif(w.sessions_28d, 0), 0) as share_sessions_evening,
        coalesce(w.sessions_night_28d / nullif(w.sessions_28d, 0), 0) as share_sessions_night,
        coalesce(w.sessions_weekend_28d / nullif(w.sessions_28d, 0), 0) as share_sessions_weekend,
        -- the circular mean local hour of the user's sessions (null without sessions) and how concentrated
        -- they are around it (0 spread over the day, 1 always at the same time)
        case when w.sessions_28d > 0 then
            (degrees(atan2(w.session_hour_sin_28d, w.session_hour_cos_28d)) / 15 + 24) % 24
        end as session_hour_mean,
        case when w.sessions_28d > 0 then
            least(1.0, sqrt(w.session_hour_sin_28d ** 2 + w.session_hour_cos_28d ** 2) / w.sessions_28d)
        end as session_hour_concentration,
        users.usual_active_hour,
        users.weekend_activity_share,
        coalesce(w.pushes_7d, 0) as pushes_7d,
        coalesce(w.pushes_28d, 0) as pushes_28d,
        coalesce(w.opens_28d, 0) as opens_28d,
        coalesce(w.opens_28d / nullif(w.pushes_28d, 0), 0) as open_rate_28d,
        coalesce(w.coupon_redemptions_90d, 0) as coupon_redemptions_90d,
        coalesce(w.coupon_discount_90d, 0) as coupon_discount_90d,
        users.date - w.last_push_date as days_since_last_push,
        {%- for tone in var('tones') %}
        tn.tone_pushes_{{ tone }},
        tn.tone_opens_{{ tone }}{{ ',' if not loop.last }}
        {%- endfor %}
    from users
    left join segments using (country, date, user_id)
    left join windows as w using (country, date, user_id)
    left join tones as tn using (country, date, user_id)
)

select * from final
