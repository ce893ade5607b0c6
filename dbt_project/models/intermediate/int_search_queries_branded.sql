with

queries as (
    select * from {{ ref('stg_gsc__queries') }}
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
        cast(sum(impressions) as bigint) as impressions
    from queries
    group by search_date, query
),

final as (
    select
        per_day.search_date,
        per_day.query,
        matched.is_branded,
        per_day.clicks,
        per_day.impressions
    from per_day
    inner join matched
        on per_day.query = matched.query
)

select * from final
