with

source as (
    select * from {{ source('discourse', 'categories') }}
),

final as (
    select
        category_id,
        name as category_name,
        slug as category_slug,
        parent_category_id,
        coalesce(read_restricted, false) as is_private,
        _forum_url as forum_url,
        _loaded_at as loaded_at
    from source
)

select * from final
