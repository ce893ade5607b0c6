{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='share_date',
        on_schema_change='append_new_columns',
        post_hook="{{ delete_share_days_without_shares(ref('fct_community_activity')) }}"
    )
}}
-- Incremental by share day: a share day's rows read that day's activities (the shares), the
-- sessions of the 28 days before it to 3 days after it, and the first loaded GA4 day. Each row
-- keeps a stamp of those inputs (`inputs_stamp`: the day fingerprint of fct_community_activity,
-- the sessions' load and rules stamp of each window day, the first loaded day, the rules), as the weekly
-- health mart does for its weeks (macros/incremental_weeks.sql); a night rebuilds the share days
-- whose stamp changed, or that are new or gone (macros/incremental_windows.sql changed_days), and
-- reads only their shares and their windows' sessions.
with

activities as (
    select * from {{ ref('fct_community_activity') }}
),

sessions as (
    select * from {{ ref('int_sessions_classified') }}
),

first_loaded as (
    select min(session_date) as first_session_date from sessions
),

current_rules as (
    select {{ rules_fingerprint() }} as rules_fingerprint
),

-- what a share day's rows read, as a stamp: the day's activities (fct_community_activity's day
-- fingerprint), the stamp of each session day of its window, the first loaded day and the rules
share_day_fingerprints as (
    select
        activity_date,
        any_value(activities_fingerprint) as activities_fingerprint
    from activities
    where len(brand_links) > 0
    group by activity_date
),

-- a session day's stamp: the load it was built from and the rules it was classified under (what
-- int_sessions_classified keeps to decide which days to rebuild), so a reloaded day or a changed
-- rule changes it, and a full rebuild of the same raw rows has the same stamps
session_day_stamps as (
    select
        session_date,
        max(loaded_at) || ':' || max(rules_fingerprint) as sessions_stamp
    from sessions
    group by session_date
),

share_day_stamps as (
    select
        share_day.activity_date as date_day,
        md5(concat_ws(
            '|',
            any_value(share_day.activities_fingerprint),
            (select first_loaded.first_session_date from first_loaded),
            (select current_rules.rules_fingerprint from current_rules),
            coalesce(
                string_agg(
                    window_day.session_date || '=' || window_day.sessions_stamp,
                    ',' order by window_day.session_date
                ),
                ''
            )
        )) as inputs_stamp
    from share_day_fingerprints as share_day
    left join session_day_stamps as window_day
        on window_day.session_date between share_day.activity_date - 28 and share_day.activity_date + 3
    group by share_day.activity_date
),

{% if is_incremental() -%}
-- the share days whose stamp changed since they were built, or that are new or gone
share_days_to_rebuild as (
    {{ changed_days('share_day_stamps', ['inputs_stamp'], this_date='share_date') }}
),

{% endif -%}

brand_link_shares as (
    select
        unnest(brand_links) as landing_path,
        occurred_at::date as share_date,
        member_key,
        space_id
    from activities
    where len(brand_links) > 0
    {%- if is_incremental() %}
        and activity_date in (select share_days_to_rebuild.date_day from share_days_to_rebuild)
    {%- endif %}
),

shares_by_day as (
    select
        landing_path,
        share_date,
        count(*) as shares,
        count(distinct member_key) as distinct_sharers,
        count(distinct space_id) as spaces
    from brand_link_shares
    group by landing_path, share_date
),

daily_path_sessions as (
    select
        session_date,
        landing_path,
        sum(sessions) filter (where is_dark_social) as dark_sessions,
        sum(sessions) filter (where traffic_class = 'community') as community_sessions
    from sessions
    where landing_path in (select shares_by_day.landing_path from shares_by_day)
    {%- if is_incremental() %}
        and exists (
            select 1
            from share_days_to_rebuild
            where sessions.session_date
                between share_days_to_rebuild.date_day - 28 and share_days_to_rebuild.date_day + 3
        )
    {%- endif %}
    group by session_date, landing_path
),

share_windows as (
    select
        share_day.landing_path,
        share_day.share_date,
        coalesce(sum(path_day.dark_sessions) filter (
            where path_day.session_date between share_day.share_date and share_day.share_date + 3
        ), 0) as dark_direct_sessions_0_3d,
        coalesce(sum(path_day.dark_sessions) filter (
            where path_day.session_date between share_day.share_date - 28 and share_day.share_date - 1
        ), 0) / 7.0 as dark_direct_sessions_baseline,
        coalesce(sum(path_day.community_sessions) filter (
            where path_day.session_date between share_day.share_date and share_day.share_date + 3
        ), 0) as community_sessions_0_3d
    from shares_by_day as share_day
    left join daily_path_sessions as path_day
        on path_day.landing_path = share_day.landing_path
        and path_day.session_date between share_day.share_date - 28 and share_day.share_date + 3
    group by share_day.landing_path, share_day.share_date
),

final as (
    select
        share_day.landing_path,
        share_day.share_date,
        share_day.shares,
        share_day.distinct_sharers,
        share_day.spaces,
        share_windows.dark_direct_sessions_0_3d::bigint as dark_direct_sessions_0_3d,
        -- no baseline unless all 28 days before the share are loaded
        case
            when share_day.share_date - 28 >= first_loaded.first_session_date
                then share_windows.dark_direct_sessions_baseline
        end::double as dark_direct_sessions_baseline,
        case
            when share_day.share_date - 28 >= first_loaded.first_session_date
                and share_windows.dark_direct_sessions_baseline > 0
                then share_windows.dark_direct_sessions_0_3d / share_windows.dark_direct_sessions_baseline - 1
        end::double as share_lift,
        share_windows.community_sessions_0_3d::bigint as community_sessions_0_3d,
        share_day_stamps.inputs_stamp,
        {{ built_at() }} as built_at
    from shares_by_day as share_day
    inner join share_windows
        on share_day.landing_path = share_windows.landing_path
        and share_day.share_date = share_windows.share_date
    inner join share_day_stamps on share_day.share_date = share_day_stamps.date_day
    cross join first_loaded
)

select * from final
