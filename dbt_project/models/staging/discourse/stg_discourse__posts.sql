with

source as (
    select * from {{ source('discourse', 'posts') }}
),

renamed as (
    select
        post_id,
        topic_id,
        post_number,
        reply_to_post_number,
        user_id,
        username,
        "date" as post_date,
        created_at as posted_at,
        updated_at,
        cooked as cooked_html,
        raw as raw_markdown,
        like_count,
        reads,
        post_type,
        action_code,
        coalesce(hidden, false) as is_hidden,
        deleted_at,
        _forum_url as forum_url,
        _loaded_at as loaded_at
    from source
),

final as (
    select
        *,
        post_number = 1 as is_topic_start,
        -- moderator actions, small actions (closed, pinned, ...) and the system user's posts
        post_type in (2, 3) or user_id < 0 as is_system,
        deleted_at is not null as is_deleted
    from renamed
)

select * from final
