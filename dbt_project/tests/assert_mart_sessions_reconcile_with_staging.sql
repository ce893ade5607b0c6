-- A failure means the daily mart lost, duplicated or invented sessions compared with staging on these days.
-- Reported in Dagster as a check on the model it guards (it reads more than one model).
{{ config(meta={'dagster': {'ref': {'name': 'mart_dark_social_daily'}}}) }}
with

daily as (
    select * from {{ ref('mart_dark_social_daily') }}
),

staged as (
    select * from {{ ref('stg_ga4__sessions') }}
),

staged_daily as (
    select
        session_date,
        sum(sessions) as staged_sessions
    from staged
    {%- if var('start_date') %}
    -- the mart leaves out days before start_date; its last day is the last staged day
    where session_date >= cast('{{ var("start_date") }}' as date)
    {%- endif %}
    group by session_date
),

compared as (
    select
        coalesce(daily."date", staged_daily.session_date) as "date",
        daily.total_sessions,
        coalesce(staged_daily.staged_sessions, 0) as staged_sessions
    from daily
    full outer join staged_daily
        on daily."date" = staged_daily.session_date
)

select * from compared
where total_sessions is null
    or total_sessions <> staged_sessions
