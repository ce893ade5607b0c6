with

source as (
    select * from {{ source('discourse', 'posts') }}
),

-- A post moved into a newer topic is filed with that topic's day (connectors/discourse.py), so a
-- post loaded before the move is in two load days: the latest load says where it is now.
latest_loads as (
    select *
    from source
    qualify row_number() over (partition by post_id order by _loaded_at desc, "date" desc) = 1
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
    from latest_loads
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
