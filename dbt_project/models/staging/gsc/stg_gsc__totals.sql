with

source as (
    select * from {{ source('gsc', 'totals_daily') }}
),

renamed as (
    select
        "date" as search_date,
        _site_url as site_url,
        coalesce(clicks, 0) as clicks,
        coalesce(impressions, 0) as impressions,
        ctr,
        position,
        _loaded_at as loaded_at,
        _run_id as run_id
    from source
)

select * from renamed
