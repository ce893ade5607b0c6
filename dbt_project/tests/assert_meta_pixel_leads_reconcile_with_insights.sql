-- A failure means a day's pixel Lead events and the ads' attributed pixel leads disagree beyond what organic leads explain (pixel below the ads' count, or above twice it): a broken pixel, a lost day or a double load.
-- The pixel counts every lead, paid or organic, so it is at least the insights' attributed count; the
-- sandbox plants 1.3x. Days with no attributed lead are not compared (nothing to scale from).
-- Reported in Dagster as a check on the pixel events (it reads both staging models).
-- Severity warn: the 1x-2x band is a heuristic (a brand whose leads are mostly organic exceeds 2x on
-- real data, and Meta may report a lead on the day of the ad, not of the lead), so an outlier day
-- is a prompt to look, not proof of a wrong number; duplicates fail the error tests on both tables.
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'stg_meta__pixel_events_hourly'}}}) }}
with

pixel as (
    select * from {{ ref('stg_meta__pixel_events_hourly') }}
),

insights as (
    select * from {{ ref('stg_meta__ad_insights') }}
),

pixel_leads_per_day as (
    select
        "date",
        sum("count") as pixel_leads
    from pixel
    where event = 'Lead'
    group by "date"
),

insights_leads_per_day as (
    select
        "date",
        sum(lead) as insights_leads
    from insights
    group by "date"
),

compared as (
    select
        insights_leads_per_day."date",
        insights_leads_per_day.insights_leads,
        coalesce(pixel_leads_per_day.pixel_leads, 0) as pixel_leads
    from insights_leads_per_day
    left join pixel_leads_per_day
        on insights_leads_per_day."date" = pixel_leads_per_day."date"
    where insights_leads_per_day.insights_leads > 0
)

select * from compared
where pixel_leads < insights_leads
    or pixel_leads > 2 * insights_leads
