{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='"date"',
        on_schema_change='append_new_columns',
        post_hook="{{ delete_days_outside_spine('\"date\"', [[ref('int_sessions_classified'), 'session_date']]) }}"
    )
}}
{#- A nightly run rebuilds only the days whose sessions were rebuilt since the last build and the
    27 days after each (their 28-day trailing share reads them), macros/incremental_windows.sql. -#}

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

-- when each day's sessions were last rebuilt: the stamp this mart keeps per day
session_day_stamps as (
    select
        session_date as date_day,
        max(built_at) as sessions_built_at
    from sessions
    group by session_date
),

{% if is_incremental() -%}
-- the days whose sessions were rebuilt (or emptied) since this mart read them
changed_days as (
    {{ changed_days('session_day_stamps', ['sessions_built_at']) }}
),

-- a changed day and the 27 after it (their trailing 28 days read it), and spine days not built yet
rebuilt_days as (
    {{ days_after_changes('date_spine', 'changed_days', 27) }}
),

{% else -%}
rebuilt_days as (
    select date_day from date_spine
),

{% endif -%}
-- the rebuilt days and the 27 before each: what their trailing 28 days read
read_days as (
    select distinct date_spine.date_day
    from date_spine
    inner join rebuilt_days
        on date_spine.date_day between rebuilt_days.date_day - 27 and rebuilt_days.date_day
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
    where session_date in (select read_days.date_day from read_days)
    group by session_date
),

filled as (
    select
        read_days.date_day,
        cast(coalesce(daily.total_sessions, 0) as bigint) as total_sessions,
        cast(coalesce(daily.dark_social_sessions, 0) as bigint) as dark_social_sessions,
        cast(coalesce(daily.dark_messaging_sessions, 0) as bigint) as dark_messaging_sessions,
        cast(coalesce(daily.dark_direct_sessions, 0) as bigint) as dark_direct_sessions,
        cast(coalesce(daily.total_key_events, 0) as double) as total_key_events,
        cast(coalesce(daily.dark_social_key_events, 0) as double) as dark_social_key_events,
        coalesce(daily.is_ga4_sampled_or_thresholded, false) as is_ga4_sampled_or_thresholded,
        session_day_stamps.sessions_built_at
    from read_days
    left join daily
        on read_days.date_day = daily.session_date
    left join session_day_stamps
        on read_days.date_day = session_day_stamps.date_day
),

-- the 28 days ending on each date, days without sessions counted as zero (a range frame: only the
-- days a rebuilt day reads are here)
trailing_28d as (
    select
        *,
        sum(dark_social_sessions) over last_28_days as dark_social_sessions_28d,
        sum(total_sessions) over last_28_days as total_sessions_28d
    from filled
    window last_28_days as (order by date_day range between interval 27 days preceding and current row)
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
        is_ga4_sampled_or_thresholded,
        sessions_built_at
    from trailing_28d
    where date_day in (select rebuilt_days.date_day from rebuilt_days)
)

select * from final
