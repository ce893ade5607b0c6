-- A failure means a day's query rows hold more clicks than Search Console's own date total: a day loaded twice, or the two streams loaded from different properties or runs.
-- Reported in Dagster as a check on the query rows (it reads both staging models).
{{ config(meta={'dagster': {'ref': {'name': 'stg_gsc__queries'}}}) }}
with

queries as (
    select * from {{ ref('stg_gsc__queries') }}
),

totals as (
    select * from {{ ref('stg_gsc__totals') }}
),

query_clicks_per_day as (
    select
        search_date,
        sum(clicks) as query_clicks
    from queries
    group by search_date
),

compared as (
    select
        query_clicks_per_day.search_date,
        query_clicks_per_day.query_clicks,
        totals.clicks as total_clicks
    from query_clicks_per_day
    inner join totals
        on query_clicks_per_day.search_date = totals.search_date
)

select * from compared
where query_clicks > total_clicks
