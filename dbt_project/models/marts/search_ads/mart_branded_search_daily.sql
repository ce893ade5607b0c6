{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='"date"',
        on_schema_change='append_new_columns',
        post_hook="{{ delete_days_outside_spine('\"date\"', [[ref('int_search_queries_branded'), 'search_date'], [ref('stg_gsc__totals'), 'search_date']]) }}"
    )
}}
{#- A nightly run rebuilds only the days whose queries or totals changed since the last build and
    the 28 days after each (their baseline reads them), macros/incremental_windows.sql. -#}
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

-- when each day's queries were last rebuilt and its totals last loaded: the stamps this mart keeps
query_day_stamps as (
    select
        search_date,
        max(built_at) as queries_built_at
    from queries
    group by search_date
),

total_day_stamps as (
    select
        search_date,
        max(loaded_at) as totals_loaded_at
    from totals
    group by search_date
),

input_day_stamps as (
    select
        coalesce(query_day_stamps.search_date, total_day_stamps.search_date) as date_day,
        query_day_stamps.queries_built_at,
        total_day_stamps.totals_loaded_at
    from query_day_stamps
    full outer join total_day_stamps
        on query_day_stamps.search_date = total_day_stamps.search_date
),

bounds as (
    select
        min(date_day) as first_date,
        max(date_day) as last_date
    from input_day_stamps
),

-- every day from the first to the last loaded Search Console day: a day without rows counts as 0
date_spine as (
    select cast(unnest(generate_series(first_date, last_date, interval 1 day)) as date) as date_day
    from bounds
    where first_date is not null
),

{% if is_incremental() -%}
-- the days whose queries were rebuilt or whose totals were reloaded since this mart read them
changed_days as (
    {{ changed_days('input_day_stamps', ['queries_built_at', 'totals_loaded_at']) }}
),

-- a changed day and the 28 after it (their baselines read it), and spine days not built yet
rebuilt_days as (
    {{ days_after_changes('date_spine', 'changed_days', 28) }}
),

{% else -%}
rebuilt_days as (
    select date_day from date_spine
),

{% endif -%}
-- the rebuilt days and the 28 before each: what their baselines read
read_days as (
    select distinct date_spine.date_day
    from date_spine
    inner join rebuilt_days
        on date_spine.date_day between rebuilt_days.date_day - 28 and rebuilt_days.date_day
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
    where search_date in (select read_days.date_day from read_days)
    group by search_date
),

filled as (
    select
        read_days.date_day,
        {% if branded_known %}cast(coalesce(query_days.branded_clicks, 0) as bigint){% else %}cast(null as bigint){% endif %} as branded_clicks,
        {% if branded_known %}cast(coalesce(query_days.branded_impressions, 0) as bigint){% else %}cast(null as bigint){% endif %} as branded_impressions,
        {% if branded_known %}cast(coalesce(query_days.nonbranded_clicks, 0) as bigint){% else %}cast(null as bigint){% endif %} as nonbranded_clicks,
        {% if branded_known %}cast(coalesce(query_days.nonbranded_impressions, 0) as bigint){% else %}cast(null as bigint){% endif %} as nonbranded_impressions,
        cast(coalesce(query_days.query_clicks, 0) as bigint) as query_clicks,
        totals.clicks as total_clicks,
        input_day_stamps.queries_built_at,
        input_day_stamps.totals_loaded_at
    from read_days
    left join query_days
        on read_days.date_day = query_days.search_date
    left join totals
        on read_days.date_day = totals.search_date
    left join input_day_stamps
        on read_days.date_day = input_day_stamps.date_day
),

-- the 28 days before each date (the date itself excluded), days without rows counted as zero (a
-- range frame: only the days a rebuilt day reads are here)
baseline as (
    select
        *,
        sum(branded_clicks) over previous_28_days as branded_clicks_previous_28d,
        count(*) over previous_28_days as days_of_history
    from filled
    window previous_28_days as (
        order by date_day range between interval 28 days preceding and interval 1 day preceding
    )
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
        cast(greatest(coalesce(total_clicks, 0) - query_clicks, 0) as bigint) as anonymized_clicks,
        queries_built_at,
        totals_loaded_at
    from baseline
    where date_day in (select rebuilt_days.date_day from rebuilt_days)
)

select * from final
