-- A failure means the dark social range is broken: lower bound above upper bound, or dark above all sessions.
with

daily as (
    select * from {{ ref('mart_dark_social_daily') }}
),

inverted as (
    select
        "date",
        dark_messaging_sessions,
        dark_social_sessions,
        dark_social_share_low,
        dark_social_share
    from daily
    where dark_messaging_sessions > dark_social_sessions
        or dark_social_share_low > dark_social_share
        or dark_social_sessions > total_sessions
)

select * from inverted
