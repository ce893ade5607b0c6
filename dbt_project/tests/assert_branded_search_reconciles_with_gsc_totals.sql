-- A failure means branded + non-branded + anonymized clicks differ from Search Console's own date total on these days: the mart lost or invented clicks.
-- Reported in Dagster as a check on the model it guards (it reads more than one model).
{{ config(meta={'dagster': {'ref': {'name': 'mart_branded_search_daily'}}}) }}
with

daily as (
    select * from {{ ref('mart_branded_search_daily') }}
),

totals as (
    select * from {{ ref('stg_gsc__totals') }}
),

compared as (
    select
        daily."date",
        daily.branded_clicks + daily.nonbranded_clicks as query_clicks,
        daily.branded_clicks + daily.nonbranded_clicks + daily.anonymized_clicks as mart_clicks,
        totals.clicks as total_clicks
    from daily
    inner join totals
        on daily."date" = totals.search_date
)

-- a day whose query rows exceed the total fails assert_gsc_query_clicks_within_date_totals instead
select * from compared
where mart_clicks <> greatest(total_clicks, query_clicks)
