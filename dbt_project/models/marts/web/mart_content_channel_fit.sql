with

sessions as (
    select * from {{ ref('int_sessions_classified') }}
),

as_of as (
    select max(session_date) as as_of_date from sessions
),

-- the trailing window ends on the last loaded day (inclusive)
recent as (
    select
        case
            when sessions.landing_path = '/' then '(home)'
            when starts_with(sessions.landing_path, '(') then sessions.landing_path
            else split_part(sessions.landing_path, '/', 2)
        end as content_group,
        sessions.traffic_class,
        sessions.sessions,
        sessions.key_events
    from sessions
    cross join as_of
    where sessions.session_date > as_of.as_of_date - {{ var('engagement_window_days') }}
),

by_group_class as (
    select
        content_group,
        traffic_class,
        sum(sessions) as sessions,
        sum(key_events) as key_events
    from recent
    group by content_group, traffic_class
),

shares as (
    select
        *,
        sessions / nullif(sum(sessions) over (partition by content_group), 0) as share_of_group,
        (
            sum(sessions) over (partition by traffic_class)
            / nullif(sum(sessions) over (), 0)
        ) as share_of_site
    from by_group_class
),

final as (
    select
        content_group,
        traffic_class,
        sessions::bigint as sessions,
        key_events::double as key_events,
        case when sessions > 0 then key_events / sessions else 0 end::double as key_event_rate,
        coalesce(share_of_group, 0)::double as share_of_group,
        case when share_of_site > 0 then share_of_group / share_of_site end::double as index_vs_site
    from shares
)

select * from final
