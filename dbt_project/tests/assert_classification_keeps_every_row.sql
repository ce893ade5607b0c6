-- A failure means classification added or dropped rows or sessions: a seed join fanned out or filtered.
-- Reported in Dagster as a check on the model it guards (it reads more than one model).
{{ config(meta={'dagster': {'ref': {'name': 'int_sessions_classified'}}}) }}
with

staged_sessions as (
    select
        count(*) as row_count,
        coalesce(sum(sessions), 0) as total
    from {{ ref('stg_ga4__sessions') }}
),

classified_sessions as (
    select
        count(*) as row_count,
        coalesce(sum(sessions), 0) as total
    from {{ ref('int_sessions_classified') }}
),

staged_leads as (
    select
        count(*) as row_count,
        coalesce(sum(leads), 0) as total
    from {{ ref('stg_ga4__leads') }}
),

classified_leads as (
    select
        count(*) as row_count,
        coalesce(sum(leads), 0) as total
    from {{ ref('int_leads_classified') }}
),

compared as (
    select
        'sessions' as model,
        staged_sessions.row_count as staged_rows,
        classified_sessions.row_count as classified_rows,
        staged_sessions.total as staged_total,
        classified_sessions.total as classified_total
    from staged_sessions
    cross join classified_sessions

    union all

    select
        'leads' as model,
        staged_leads.row_count as staged_rows,
        classified_leads.row_count as classified_rows,
        staged_leads.total as staged_total,
        classified_leads.total as classified_total
    from staged_leads
    cross join classified_leads
)

select * from compared
where staged_rows <> classified_rows
    or staged_total <> classified_total
