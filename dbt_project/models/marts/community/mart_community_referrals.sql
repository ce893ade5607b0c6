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

shares as (
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
    from shares
    group by landing_path, share_date
),

daily_path_sessions as (
    select
        session_date,
        landing_path,
        sum(sessions) filter (where is_dark_social) as dark_sessions,
        sum(sessions) filter (where traffic_class = 'community') as community_sessions
    from sessions
    where landing_path in (select landing_path from shares_by_day)
    group by session_date, landing_path
),

windows as (
    select
        s.landing_path,
        s.share_date,
        coalesce(sum(d.dark_sessions) filter (
            where d.session_date between s.share_date and s.share_date + 3
        ), 0) as dark_direct_sessions_0_3d,
        coalesce(sum(d.dark_sessions) filter (
            where d.session_date between s.share_date - 28 and s.share_date - 1
        ), 0) / 7.0 as dark_direct_sessions_baseline,
        coalesce(sum(d.community_sessions) filter (
            where d.session_date between s.share_date and s.share_date + 3
        ), 0) as community_sessions_0_3d
    from shares_by_day as s
    left join daily_path_sessions as d
        on d.landing_path = s.landing_path
        and d.session_date between s.share_date - 28 and s.share_date + 3
    group by s.landing_path, s.share_date
),

final as (
    select
        s.landing_path,
        s.share_date,
        s.shares,
        s.distinct_sharers,
        s.spaces,
        w.dark_direct_sessions_0_3d::bigint as dark_direct_sessions_0_3d,
        -- no baseline unless all 28 days before the share are loaded
        case when s.share_date - 28 >= first_loaded.first_session_date
            then w.dark_direct_sessions_baseline
        end::double as dark_direct_sessions_baseline,
        case when s.share_date - 28 >= first_loaded.first_session_date
            and w.dark_direct_sessions_baseline > 0
            then w.dark_direct_sessions_0_3d / w.dark_direct_sessions_baseline - 1
        end::double as share_lift,
        w.community_sessions_0_3d::bigint as community_sessions_0_3d
    from shares_by_day as s
    inner join windows as w
        on s.landing_path = w.landing_path
        and s.share_date = w.share_date
    cross join first_loaded
)

select * from final
