{#- the windows are vars a marketer may change (dbt_project.yml, docs/metrics.md §2) -#}
{%- set before_days = var('halo_days_before') -%}
{%- set halo_days_after = var('halo_days_after') -%}
{#- without brand terms (the brand file's brand.terms) branded clicks are unknown: the search halo is null -#}
{%- set branded_known = 'true' if brand_terms_set() else 'false' -%}
with

ad_insights as (
    select * from {{ ref('stg_meta__ad_insights') }}
),

branded_search as (
    select * from {{ ref('mart_branded_search_daily') }}
),

sessions as (
    select * from {{ ref('int_sessions_classified') }}
),

campaigns as (
    select
        campaign_id,
        arg_max(campaign_name, "date") as campaign_name,
        min("date") filter (where spend > 0) as flight_start,
        max("date") filter (where spend > 0) as flight_end,
        cast(sum(spend) as double) as spend,
        cast(sum(impressions) as bigint) as impressions,
        cast(sum(clicks) as bigint) as clicks,
        -- every offsite_conversion.fb_pixel_* action staging pivots
        cast(sum(lead + purchase + complete_registration + page_view) as double) as pixel_conversions
    from ad_insights
    group by campaign_id
    -- a campaign that never spent has no flight
    having max(spend) > 0
),

windows as (
    select
        *,
        flight_start - {{ before_days }} as before_start,
        flight_start - 1 as before_end,
        flight_end + {{ halo_days_after }} as during_end
    from campaigns
),

dark_direct_daily as (
    select
        session_date as "date",
        sum(sessions) filter (where traffic_class = 'dark_social_direct') as dark_direct_sessions
    from sessions
    group by session_date
),

-- the days each source has loaded; a window day inside these bounds without rows counts as 0
gsc_bounds as (
    select
        min("date") as first_date,
        max("date") as last_date
    from branded_search
),

ga4_bounds as (
    select
        min("date") as first_date,
        max("date") as last_date
    from dark_direct_daily
),

branded_windows as (
    select
        windows.campaign_id,
        gsc_bounds.first_date <= windows.before_start as has_search_baseline,
        case
            when {{ branded_known }}
                then coalesce(sum(branded_search.branded_clicks) filter (
                        where branded_search."date" between windows.before_start and windows.before_end
                    ), 0)
        end as before_clicks,
        case
            when {{ branded_known }}
                then coalesce(sum(branded_search.branded_clicks) filter (
                        where branded_search."date" between windows.flight_start and windows.during_end
                    ), 0)
        end as during_clicks,
        -- the during window stops at the last loaded day while the halo is still running
        greatest(datediff('day', windows.flight_start, least(windows.during_end, gsc_bounds.last_date)) + 1, 0)
            as during_days
    from windows
    cross join gsc_bounds
    left join branded_search
        on branded_search."date" between windows.before_start and windows.during_end
    group by all
),

dark_direct_windows as (
    select
        windows.campaign_id,
        ga4_bounds.first_date <= windows.before_start as has_sessions_baseline,
        coalesce(sum(dark_direct_daily.dark_direct_sessions) filter (
            where dark_direct_daily."date" between windows.before_start and windows.before_end
        ), 0) as before_sessions,
        coalesce(sum(dark_direct_daily.dark_direct_sessions) filter (
            where dark_direct_daily."date" between windows.flight_start and windows.during_end
        ), 0) as during_sessions,
        greatest(datediff('day', windows.flight_start, least(windows.during_end, ga4_bounds.last_date)) + 1, 0)
            as during_days
    from windows
    cross join ga4_bounds
    left join dark_direct_daily
        on dark_direct_daily."date" between windows.before_start and windows.during_end
    group by all
),

per_day as (
    select
        windows.*,
        coalesce(branded_windows.has_search_baseline, false) as has_search_baseline,
        coalesce(dark_direct_windows.has_sessions_baseline, false) as has_sessions_baseline,
        case
            when branded_windows.has_search_baseline
                then cast(branded_windows.before_clicks as double) / {{ before_days }}
        end as branded_clicks_per_day_before,
        case
            when branded_windows.during_days > 0
                then cast(branded_windows.during_clicks as double) / branded_windows.during_days
        end as branded_clicks_per_day_during,
        branded_windows.during_days as search_during_days,
        case
            when dark_direct_windows.has_sessions_baseline
                then cast(dark_direct_windows.before_sessions as double) / {{ before_days }}
        end as dark_direct_sessions_per_day_before,
        case
            when dark_direct_windows.during_days > 0
                then cast(dark_direct_windows.during_sessions as double) / dark_direct_windows.during_days
        end as dark_direct_sessions_per_day_during,
        (
            coalesce(branded_windows.during_days, 0) >= datediff('day', windows.flight_start, windows.during_end) + 1
            and coalesce(dark_direct_windows.during_days, 0)
            >= datediff('day', windows.flight_start, windows.during_end) + 1
        ) as has_complete_halo_window
    from windows
    left join branded_windows
        on windows.campaign_id = branded_windows.campaign_id
    left join dark_direct_windows
        on windows.campaign_id = dark_direct_windows.campaign_id
),

final as (
    select
        campaign_id,
        campaign_name,
        flight_start,
        flight_end,
        spend,
        impressions,
        clicks,
        pixel_conversions,
        branded_clicks_per_day_before,
        branded_clicks_per_day_during,
        case
            when branded_clicks_per_day_before > 0
                then branded_clicks_per_day_during / branded_clicks_per_day_before - 1
        end as branded_search_lift,
        dark_direct_sessions_per_day_before,
        dark_direct_sessions_per_day_during,
        case
            when dark_direct_sessions_per_day_before > 0
                then dark_direct_sessions_per_day_during / dark_direct_sessions_per_day_before - 1
        end as dark_direct_lift,
        case
            when branded_clicks_per_day_during - branded_clicks_per_day_before > 0
                then spend / ((branded_clicks_per_day_during - branded_clicks_per_day_before) * search_during_days)
        end as cost_per_incremental_branded_click,
        has_search_baseline and has_sessions_baseline as has_full_baseline,
        has_complete_halo_window
    from per_day
)

select * from final
