with

source as (
    select * from {{ source('gsc', 'queries_daily') }}
),

renamed as (
    select
        "date" as search_date,
        _site_url as site_url,
        lower(trim(query)) as query,
        page,
        {{ normalise_landing_path('page') }} as page_path,
        lower(device) as device,
        lower(country) as country,
        coalesce(clicks, 0) as clicks,
        coalesce(impressions, 0) as impressions,
        ctr,
        position,
        _loaded_at as loaded_at,
        _run_id as run_id
    from source
)

select * from renamed
