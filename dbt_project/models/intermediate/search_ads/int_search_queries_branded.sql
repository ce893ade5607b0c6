{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='search_date',
        on_schema_change='sync_all_columns',
        post_hook="{{ delete_days_without_rows(ref('stg_gsc__queries'), 'search_date') }}"
    )
}}
{#- A nightly run rebuilds only the days loaded since the last build (macros/incremental_days.sql). -#}

with

-- the seeds, vars and SQL these rows are built under, as one hash
current_rules as (
    select {{ rules_fingerprint(vars=['brand_terms', 'brand_patterns']) }} as rules_fingerprint
),

{% if is_incremental() -%}
-- the days whose load stamp or brand vars differ from what this table was built from
days_to_rebuild as (
    {{ days_to_rebuild(ref('stg_gsc__queries'), 'search_date') }}
),

{% endif -%}

queries as (
    select * from {{ ref('stg_gsc__queries') }}
    {%- if is_incremental() %}
    where search_date in (select search_date from days_to_rebuild)
    {%- endif %}
),

-- the matcher runs once per distinct query, not once per page x device x country row
distinct_queries as (
    select distinct query
    from queries
),

matched as (
    select
        query,
        {{ is_branded_query('query') }} as is_branded
    from distinct_queries
),

per_day as (
    select
        search_date,
        query,
        cast(sum(clicks) as bigint) as clicks,
        cast(sum(impressions) as bigint) as impressions,
        -- one stamp per loaded day (raw_gsc replaces a day whole)
        max(loaded_at) as loaded_at
    from queries
    group by search_date, query
),

final as (
    select
        per_day.search_date,
        per_day.query,
        matched.is_branded,
        per_day.clicks,
        per_day.impressions,
        per_day.loaded_at,
        current_rules.rules_fingerprint,
        {{ built_at() }} as built_at
    from per_day
    inner join matched
        on per_day.query = matched.query
    cross join current_rules
)

select * from final
