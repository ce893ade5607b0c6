with

source as (
    select * from {{ source('slack', 'messages') }}
),

renamed as (
    select
        channel_id || ':' || ts as message_id,
        "date" as thread_date,
        channel_id,
        ts,
        to_timestamp(cast(ts as double)) as posted_at,
        thread_ts,
        user_id,
        bot_id,
        subtype,
        text,
        coalesce(reply_count, 0) as reply_count,
        latest_reply,
        reactions,
        coalesce(files_count, 0) as files_count,
        edited_ts,
        _loaded_at as loaded_at
    from source
),

final as (
    select
        *,
        thread_ts is not null and thread_ts <> ts as is_thread_reply,
        thread_ts is not null and thread_ts = ts as is_thread_parent,
        -- coalesce: a plain message has no subtype, and `null in (...)` is null, not false
        coalesce(bot_id is not null or subtype = 'bot_message', false) as is_bot_message,
        coalesce(
            subtype in (
                'channel_join', 'channel_leave', 'channel_topic', 'channel_purpose',
                'channel_name', 'channel_archive', 'bot_add', 'bot_remove'
            ),
            false
        ) as is_system_message
    from renamed
)

select * from final
