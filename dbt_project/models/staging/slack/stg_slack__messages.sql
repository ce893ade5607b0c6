with

source as (
    select * from {{ source('slack', 'messages') }}
),

subtypes as (
    select * from {{ ref('slack_message_subtypes') }}
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
        renamed.*,
        renamed.thread_ts is not null and renamed.thread_ts <> renamed.ts as is_thread_reply,
        renamed.thread_ts is not null and renamed.thread_ts = renamed.ts as is_thread_parent,
        -- coalesce: a plain message has neither bot_id nor subtype
        coalesce(renamed.bot_id is not null or renamed.subtype = 'bot_message', false) as is_bot_message,
        -- docs/metrics.md §3: a subtype is member activity only when seed slack_message_subtypes says
        -- so; one it does not list is not (a warn test names it). A bot's post is a bot's, not a
        -- notice: reactions to it still count.
        (
            renamed.subtype is not null
            and renamed.subtype <> 'bot_message'
            and not coalesce(subtypes.counts_as_activity, false)
        ) as is_system_message
    from renamed
    left join subtypes on renamed.subtype = subtypes.subtype
)

select * from final
