{#- Without a brand term or pattern (the brand file's brand.terms) branded is unknown: the
    branded and non-branded figures are null, never a 0 computed from nothing. -#}
{%- set branded_known = brand_terms_set() %}

with

queries as (
    select * from {{ ref('int_search_queries_branded') }}
),

totals as (
    select * from {{ ref('stg_gsc__totals') }}
),

query_days as (
    select
        search_date,
        sum(clicks) filter (where is_branded) as branded_clicks,
        sum(impressions) filter (where is_branded) as branded_impressions,
        sum(clicks) filter (where not is_branded) as nonbranded_clicks,
        sum(impressions) filter (where not is_branded) as nonbranded_impressions,
        sum(clicks) as query_clicks
    from queries
    group by search_date
),

bounds as (
    select
        min(search_date) as first_date,
        max(search_date) as last_date
    from (
        select search_date from query_days
        union all
        select search_date from totals
    ) as loaded_days
),

-- every day from the first to the last loaded Search Console day: a day without rows counts as 0
date_spine as (
    select cast(unnest(generate_series(first_date, last_date, interval 1 day)) as date) as date_day
    from bounds
    where first_date is not null
),

filled as (
    select
        date_spine.date_day,
        {% if branded_known %}cast(coalesce(query_days.branded_clicks, 0) as bigint){% else %}cast(null as bigint){% endif %} as branded_clicks,
        {% if branded_known %}cast(coalesce(query_days.branded_impressions, 0) as bigint){% else %}cast(null as bigint){% endif %} as branded_impressions,
        {% if branded_known %}cast(coalesce(query_days.nonbranded_clicks, 0) as bigint){% else %}cast(null as bigint){% endif %} as nonbranded_clicks,
        {% if branded_known %}cast(coalesce(query_days.nonbranded_impressions, 0) as bigint){% else %}cast(null as bigint){% endif %} as nonbranded_impressions,
        cast(coalesce(query_days.query_clicks, 0) as bigint) as query_clicks,
        totals.clicks as total_clicks
    from date_spine
    left join query_days
        on date_spine.date_day = query_days.search_date
    left join totals
        on date_spine.date_day = totals.search_date
),

-- the 28 days before each date (the date itself excluded): 28 rows of the spine
baseline as (
    select
        *,
        sum(branded_clicks) over previous_28_days as branded_clicks_previous_28d,
        count(*) over previous_28_days as days_of_history
    from filled
    window previous_28_days as (order by date_day rows between 28 preceding and 1 preceding)
),

final as (
    select
        date_day as "date",
        branded_clicks,
        branded_impressions,
        nonbranded_clicks,
        nonbranded_impressions,
        case
            when branded_clicks + nonbranded_clicks = 0 then cast(0 as double)
            else branded_clicks / (branded_clicks + nonbranded_clicks)
        end as branded_click_share,
        case
            when days_of_history < 28 then cast(null as double)
            else branded_clicks_previous_28d / 28
        end as branded_clicks_baseline_28d,
        case
            when days_of_history < 28 or branded_clicks_previous_28d = 0 then cast(null as double)
            else branded_clicks / (branded_clicks_previous_28d / 28) - 1
        end as branded_lift,
        cast(greatest(coalesce(total_clicks, 0) - query_clicks, 0) as bigint) as anonymized_clicks
    from baseline
)

select * from final
