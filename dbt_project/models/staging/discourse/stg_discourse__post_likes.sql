with

source as (
    select * from {{ source('discourse', 'post_likes') }}
),

final as (
    select
        post_id,
        user_id,
        "date" as post_date,
        created_at as liked_at,
        _forum_url as forum_url,
        _loaded_at as loaded_at
    from source
)

select * from final
