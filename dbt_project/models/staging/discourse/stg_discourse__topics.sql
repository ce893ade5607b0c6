with

source as (
    select * from {{ source('discourse', 'topics') }}
),

final as (
    select
        topic_id,
        category_id,
        title,
        user_id as created_by_user_id,
        "date" as topic_date,
        created_at,
        last_posted_at,
        posts_count,
        reply_count,
        like_count,
        views,
        archetype,
        archetype = 'private_message' as is_private_message,
        coalesce(closed, false) as is_closed,
        coalesce(archived, false) as is_archived,
        _forum_url as forum_url,
        _loaded_at as loaded_at
    from source
)

select * from final
