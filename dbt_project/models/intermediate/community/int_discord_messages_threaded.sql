-- Every Discord message with its place in a conversation (docs/metrics.md §3), in Discord's own terms:
-- a reply (type 19) names the message it answers in message_reference, so a thread is a chain of
-- replies and its root is the message at the top of the chain; a thread started from a message
-- is a channel of its own (the message's started_thread_id), whose messages all belong to that
-- message's thread, in its channel. A thread start is a top-level message with at least one
-- reply (or a thread of its own); other top-level messages are plain messages. Bots' and system
-- messages are kept here with their flags (a member may reply to them) and left out downstream.
with recursive

messages as (
    select * from {{ ref('stg_discord__messages') }}
),

thread_channels as (
    select
        started_thread_id as thread_channel_id,
        channel_id as parent_channel_id,
        message_id as parent_message_id
    from messages
    where started_thread_id is not null
),

-- walk each message up its replies' references, as far as the loaded messages go
reply_chains as (
    select
        message_id,
        message_id as ancestor_id,
        0 as depth
    from messages

    union all

    select
        reply_chains.message_id,
        current_message.referenced_message_id as ancestor_id,
        reply_chains.depth + 1 as depth
    from reply_chains
    inner join messages as current_message
        on current_message.message_id = reply_chains.ancestor_id
    inner join messages as referenced
        on referenced.message_id = current_message.referenced_message_id
    where current_message.is_reply
        and reply_chains.depth < 200
),

chain_tops as (
    select
        message_id,
        arg_max(ancestor_id, depth) as top_message_id
    from reply_chains
    group by message_id
),

-- the root: a thread channel's parent message; else the top of the chain, or, when the top
-- answers a message that is not loaded (older than the loaded days), that message
messages_rooted as (
    select
        messages.*,
        coalesce(thread_channels.parent_channel_id, messages.channel_id) as space_channel_id,
        case
            when thread_channels.parent_message_id is not null then thread_channels.parent_message_id
            when chain_top.is_reply and chain_top.referenced_message_id is not null
                then chain_top.referenced_message_id
            else chain_top.message_id
        end as thread_root_id,
        case
            when messages.is_reply then messages.referenced_message_id
            when thread_channels.parent_message_id is not null then thread_channels.parent_message_id
        end as replied_to_message_id
    from messages
    inner join chain_tops on messages.message_id = chain_tops.message_id
    inner join messages as chain_top on chain_tops.top_message_id = chain_top.message_id
    left join thread_channels on messages.channel_id = thread_channels.thread_channel_id
),

replied_roots as (
    select distinct thread_root_id
    from messages_rooted
    where thread_root_id <> message_id
        and not is_system_message
),

final as (
    select
        messages_rooted.message_id,
        messages_rooted.channel_id,
        messages_rooted.space_channel_id,
        messages_rooted.message_date,
        messages_rooted.author_id,
        messages_rooted.is_bot_author,
        messages_rooted.message_type,
        messages_rooted.is_system_message,
        messages_rooted.posted_at,
        messages_rooted.content,
        messages_rooted.thread_root_id,
        messages_rooted.replied_to_message_id,
        -- a reply to a bot's or a not-loaded message answers nobody we know
        case when not replied_to.is_bot_author then replied_to.author_id end as replied_to_author_id,
        case
            when messages_rooted.thread_root_id <> messages_rooted.message_id then 'reply'
            when messages_rooted.started_thread_id is not null or replied_roots.thread_root_id is not null
                then 'thread_start'
            else 'message'
        end as thread_role
    from messages_rooted
    left join messages as replied_to on messages_rooted.replied_to_message_id = replied_to.message_id
    left join replied_roots on messages_rooted.message_id = replied_roots.thread_root_id
)

select * from final
