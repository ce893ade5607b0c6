with

sessions as (
    select * from {{ ref('int_sessions_classified') }}
    where traffic_class = 'partner_community'
),

partners as (
    select
        lower(trim(match_value)) as match_value,
        any_value(partner_community) as partner_community
    from {{ ref('partner_communities') }}
    where nullif(trim(match_value), '') is not null
    group by lower(trim(match_value))
),

-- the partner is the seed entry matching the source, else the campaign; a session tagged only
-- with medium `partner` is reported under its source
named as (
    select
        cast(date_trunc('month', sessions.session_date) as date) as month_start,
        coalesce(by_source.partner_community, by_campaign.partner_community, sessions.source) as partner_community,
        sessions.sessions,
        sessions.engaged_sessions,
        sessions.key_events
    from sessions
    left join partners as by_source on sessions.source = by_source.match_value
    left join partners as by_campaign on lower(sessions.campaign) = by_campaign.match_value
),

final as (
    select
        month_start,
        partner_community,
        sum(sessions)::bigint as sessions,
        sum(engaged_sessions)::bigint as engaged_sessions,
        sum(key_events)::double as key_events,
        case when sum(sessions) > 0 then sum(key_events) / sum(sessions) else 0 end::double as key_event_rate
    from named
    group by month_start, partner_community
)

select * from final
