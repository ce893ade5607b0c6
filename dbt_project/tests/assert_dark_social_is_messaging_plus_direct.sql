-- A failure means the upper bound of dark social is not messaging + deep-link direct on these days.
with

daily as (
    select * from {{ ref('mart_dark_social_daily') }}
),

mismatched as (
    select
        "date",
        dark_social_sessions,
        dark_messaging_sessions,
        dark_direct_sessions
    from daily
    where dark_social_sessions <> dark_messaging_sessions + dark_direct_sessions
)

select * from mismatched
