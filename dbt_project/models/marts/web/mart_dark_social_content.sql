with

sessions as (
    select * from {{ ref('int_sessions_classified') }}
),

activities as (
    select * from {{ ref('fct_community_activity') }}
),

weekly_sessions as (
    select
        cast(date_trunc('week', session_date) as date) as week_start,
        landing_path,
        sum(sessions) as sessions,
        coalesce(sum(sessions) filter (where is_dark_social), 0) as dark_social_sessions
    from sessions
    group by 1, 2
),

-- links to a page posted in the brand's communities (docs/metrics.md §4 brand links), per ISO week
weekly_shares as (
    select
        cast(date_trunc('week', occurred_at) as date) as week_start,
        unnest(brand_links) as landing_path
    from activities
    where len(brand_links) > 0
),

shares as (
    select
        week_start,
        landing_path,
        count(*) as community_shares
    from weekly_shares
    group by 1, 2
),

-- the GA4 weeks; a page shared in a week without any visit still gets a row
session_week_bounds as (
    select
        min(week_start) as first_week,
        max(week_start) as last_week
    from weekly_sessions
),

joined as (
    select
        coalesce(weekly_sessions.week_start, shares.week_start) as week_start,
        coalesce(weekly_sessions.landing_path, shares.landing_path) as landing_path,
        coalesce(weekly_sessions.sessions, 0) as sessions,
        coalesce(weekly_sessions.dark_social_sessions, 0) as dark_social_sessions,
        coalesce(shares.community_shares, 0) as community_shares
    from weekly_sessions
    full outer join shares
        on weekly_sessions.week_start = shares.week_start
        and weekly_sessions.landing_path = shares.landing_path
    cross join session_week_bounds
    where coalesce(weekly_sessions.week_start, shares.week_start)
        between session_week_bounds.first_week and session_week_bounds.last_week
),

final as (
    select
        week_start,
        landing_path,
        sessions::bigint as sessions,
        dark_social_sessions::bigint as dark_social_sessions,
        case when sessions > 0 then dark_social_sessions / sessions else 0 end::double as dark_social_share,
        community_shares::bigint as community_shares,
        rank() over (partition by week_start order by dark_social_sessions desc) as dark_rank
    from joined
)

select * from final
