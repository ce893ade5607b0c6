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

brand_link_shares as (
    select
        unnest(brand_links) as landing_path,
        occurred_at::date as share_date,
        member_key,
        space_id
    from activities
    where len(brand_links) > 0
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
        share_windows.community_sessions_0_3d::bigint as community_sessions_0_3d
    from shares_by_day as share_day
    inner join share_windows
        on share_day.landing_path = share_windows.landing_path
        and share_day.share_date = share_windows.share_date
    cross join first_loaded
)

select * from final
