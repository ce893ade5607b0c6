with

sessions as (
    select * from {{ ref('int_sessions_classified') }}
),

bounds as (
    select
        {%- if var('start_date') %}
        greatest(min(session_date), cast('{{ var("start_date") }}' as date)) as first_date,
        {%- else %}
        min(session_date) as first_date,
        {%- endif %}
        max(session_date) as last_date
    from sessions
),

-- every day from the first to the last loaded day, so a day without sessions still has a row
date_spine as (
    select cast(unnest(generate_series(first_date, last_date, interval 1 day)) as date) as date_day
    from bounds
),

daily as (
    select
        session_date,
        sum(sessions) as total_sessions,
        sum(sessions) filter (where is_dark_social) as dark_social_sessions,
        sum(sessions) filter (where traffic_class = 'dark_social_messaging') as dark_messaging_sessions,
        sum(sessions) filter (where traffic_class = 'dark_social_direct') as dark_direct_sessions,
        sum(key_events) as total_key_events,
        sum(key_events) filter (where is_dark_social) as dark_social_key_events,
        bool_or(is_subject_to_thresholding or has_data_loss_from_other_row) as is_ga4_sampled_or_thresholded
    from sessions
    group by session_date
),

filled as (
    select
        date_spine.date_day,
        cast(coalesce(daily.total_sessions, 0) as bigint) as total_sessions,
        cast(coalesce(daily.dark_social_sessions, 0) as bigint) as dark_social_sessions,
        cast(coalesce(daily.dark_messaging_sessions, 0) as bigint) as dark_messaging_sessions,
        cast(coalesce(daily.dark_direct_sessions, 0) as bigint) as dark_direct_sessions,
        cast(coalesce(daily.total_key_events, 0) as double) as total_key_events,
        cast(coalesce(daily.dark_social_key_events, 0) as double) as dark_social_key_events,
        coalesce(daily.is_ga4_sampled_or_thresholded, false) as is_ga4_sampled_or_thresholded
    from date_spine
    left join daily
        on date_spine.date_day = daily.session_date
),

-- the 28 days ending on each date: 28 rows of the spine, so days without sessions count as zero
trailing_28d as (
    select
        *,
        sum(dark_social_sessions) over last_28_days as dark_social_sessions_28d,
        sum(total_sessions) over last_28_days as total_sessions_28d
    from filled
    window last_28_days as (order by date_day rows between 27 preceding and current row)
),

final as (
    select
        date_day as "date",
        total_sessions,
        dark_social_sessions,
        dark_messaging_sessions,
        dark_direct_sessions,
        case
            when total_sessions = 0 then cast(0 as double)
            else dark_social_sessions / total_sessions
        end as dark_social_share,
        case
            when total_sessions = 0 then cast(0 as double)
            else dark_messaging_sessions / total_sessions
        end as dark_social_share_low,
        dark_social_key_events,
        case
            when dark_social_sessions = 0 then null
            else dark_social_key_events / dark_social_sessions
        end as dark_social_key_event_rate,
        total_key_events,
        case
            when total_sessions = 0 then null
            else total_key_events / total_sessions
        end as all_key_event_rate,
        case
            when total_sessions_28d = 0 then cast(0 as double)
            else dark_social_sessions_28d / total_sessions_28d
        end as dark_social_share_28d,
        is_ga4_sampled_or_thresholded
    from trailing_28d
)

select * from final
