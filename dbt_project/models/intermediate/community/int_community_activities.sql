-- One row per member activity across the community platforms (docs/metrics.md §3), before the text is
-- dropped: fct_community_activity is this without `text`, and the interest refinement of
-- mart_community_interests_weekly reads the text here. Bots and system messages are excluded.
-- Discord (optional) has no rows when it is not loaded; its reactions are not here: Discord's
-- message list counts reactions but does not say who gave them.
-- member_key() is the HMAC UDF of plugins/darksocial_member_key.py (key from MEMBER_HASH_KEY).
with

slack_messages as (
    select * from {{ ref('stg_slack__messages') }}
),

slack_users as (
    select * from {{ ref('stg_slack__users') }}
),

discourse_posts as (
    select * from {{ ref('stg_discourse__posts') }}
),

discourse_topics as (
    select * from {{ ref('stg_discourse__topics') }}
),

discourse_likes as (
    select * from {{ ref('stg_discourse__post_likes') }}
),

discourse_users as (
    select * from {{ ref('stg_discourse__users') }}
),

discord_messages as (
    select * from {{ ref('int_discord_messages_threaded') }}
),

brand_hosts as (
    {{ brand_hosts_relation() }}
),

-- Slack ----------------------------------------------------------------------------------------

slack_bots as (
    select user_id from slack_users where is_bot
),

-- system messages (joins, topic changes) and bots' messages are not member activity
slack_member_messages as (
    select *
    from slack_messages
    -- (the flags are null on a plain message: subtype and bot_id are null there)
    where not coalesce(is_system_message, false)
        and not coalesce(is_bot_message, false)
        and user_id is not null
        and user_id not in (select user_id from slack_bots)
),

slack_thread_parents as (
    select
        channel_id,
        ts as thread_ts,
        user_id as parent_user_id
    from slack_messages
    where coalesce(is_thread_parent, false)
),

slack_posts as (
    select
        'slack' as platform,
        'slack:' || m.message_id as activity_id,
        'slack:' || m.channel_id as space_id,
        m.user_id as native_user_id,
        case
            when coalesce(m.is_thread_reply, false) then 'reply'
            when coalesce(m.is_thread_parent, false) or m.reply_count > 0 then 'thread_start'
            else 'message'
        end as activity_type,
        m.posted_at as occurred_at,
        'slack:' || m.channel_id || ':' || coalesce(m.thread_ts, m.ts) as thread_id,
        -- Slack threads are flat: a reply answers the thread's parent
        case when coalesce(m.is_thread_reply, false) then p.parent_user_id end as replied_to_native_user_id,
        m.text,
        coalesce(length(m.text), 0) as text_length
    from slack_member_messages as m
    left join slack_thread_parents as p
        on m.channel_id = p.channel_id
        and m.thread_ts = p.thread_ts
),

-- One reaction activity per reacting user and emoji. Slack does not say when a reaction was
-- given: it is dated at the message's time.
slack_reaction_rows as (
    select
        m.message_id,
        m.channel_id,
        m.ts,
        m.thread_ts,
        m.posted_at,
        unnest(from_json(m.reactions::json, '[{"name": "VARCHAR", "users": ["VARCHAR"]}]')) as reaction
    from slack_messages as m
    where m.reactions is not null
        and not coalesce(m.is_system_message, false)
),

slack_reactions_by_user as (
    select
        message_id,
        channel_id,
        ts,
        thread_ts,
        posted_at,
        reaction.name as emoji,
        unnest(reaction.users) as user_id
    from slack_reaction_rows
),

slack_reactions as (
    select
        'slack' as platform,
        'slack:' || message_id || ':reaction:' || emoji || ':' || user_id as activity_id,
        'slack:' || channel_id as space_id,
        user_id as native_user_id,
        'reaction' as activity_type,
        posted_at as occurred_at,
        'slack:' || channel_id || ':' || coalesce(thread_ts, ts) as thread_id,
        null::varchar as replied_to_native_user_id,
        null::varchar as text,
        0 as text_length
    from slack_reactions_by_user
    where user_id is not null
        and user_id not in (select user_id from slack_bots)
),

-- Discourse ------------------------------------------------------------------------------------

discourse_system_users as (
    select user_id from discourse_users where is_system
),

-- regular posts (post_type 1) by people; moderator/small actions, whispers, the system user's
-- posts and deleted posts are not member activity
discourse_member_posts as (
    select p.*, t.category_id
    from discourse_posts as p
    left join discourse_topics as t on p.topic_id = t.topic_id
    where p.post_type = 1
        and p.action_code is null
        and not p.is_system
        and not p.is_deleted
        and p.user_id >= 0
        and p.user_id not in (select user_id from discourse_system_users)
        and coalesce(not t.is_private_message, true)
),

discourse_all_posts as (
    select topic_id, post_number, user_id from discourse_posts
),

discourse_topic_starters as (
    select topic_id, user_id as starter_user_id
    from discourse_posts
    where post_number = 1
),

discourse_replies_to as (
    select
        p.post_id,
        coalesce(target.user_id, starter.starter_user_id) as replied_to_user_id
    from discourse_member_posts as p
    left join discourse_all_posts as target
        on p.topic_id = target.topic_id
        and p.reply_to_post_number = target.post_number
    left join discourse_topic_starters as starter
        on p.topic_id = starter.topic_id
    where p.post_number > 1
),

discourse_post_activities as (
    select
        'discourse' as platform,
        'discourse:post:' || p.post_id as activity_id,
        'discourse:' || coalesce(p.category_id::varchar, 'uncategorized') as space_id,
        p.user_id::varchar as native_user_id,
        case when p.post_number = 1 then 'thread_start' else 'reply' end as activity_type,
        p.posted_at as occurred_at,
        'discourse:' || p.topic_id as thread_id,
        r.replied_to_user_id::varchar as replied_to_native_user_id,
        -- the cooked HTML carries the links as href; the raw Markdown when the API sent it
        coalesce(p.cooked_html, p.raw_markdown) as text,
        -- the length a reader sees: the HTML without its tags
        length(regexp_replace(coalesce(p.cooked_html, p.raw_markdown, ''), '<[^>]*>', '', 'g')) as text_length
    from discourse_member_posts as p
    left join discourse_replies_to as r on p.post_id = r.post_id
),

-- Likes: reactions. Dated when the forum sends the like's time, else at the post's time.
discourse_like_activities as (
    select
        'discourse' as platform,
        'discourse:like:' || l.post_id || ':' || l.user_id as activity_id,
        'discourse:' || coalesce(p.category_id::varchar, 'uncategorized') as space_id,
        l.user_id::varchar as native_user_id,
        'reaction' as activity_type,
        coalesce(l.liked_at, p.posted_at) as occurred_at,
        'discourse:' || p.topic_id as thread_id,
        null::varchar as replied_to_native_user_id,
        null::varchar as text,
        0 as text_length
    from discourse_likes as l
    inner join discourse_member_posts as p on l.post_id = p.post_id
    where l.user_id >= 0
        and l.user_id not in (select user_id from discourse_system_users)
),

-- Discord --------------------------------------------------------------------------------------

-- default messages and replies by people; joins, pins, thread notices and bots are not
discord_posts as (
    select
        'discord' as platform,
        'discord:' || message_id as activity_id,
        'discord:' || space_channel_id as space_id,
        author_id as native_user_id,
        thread_role as activity_type,
        posted_at as occurred_at,
        'discord:' || space_channel_id || ':' || thread_root_id as thread_id,
        replied_to_author_id as replied_to_native_user_id,
        content as text,
        coalesce(length(content), 0) as text_length
    from discord_messages
    where not is_system_message
        and not is_bot_author
        and author_id is not null
),

-- All platforms ----------------------------------------------------------------------------------

unioned as (
    select * from slack_posts
    union all
    select * from slack_reactions
    union all
    select * from discourse_post_activities
    union all
    select * from discourse_like_activities
    union all
    select * from discord_posts
),

final as (
    select
        unioned.activity_id,
        unioned.platform,
        unioned.space_id,
        member_key(unioned.platform, unioned.native_user_id) as member_key,
        unioned.activity_type,
        -- naive UTC: week and day boundaries never depend on the session's time zone
        timezone('UTC', unioned.occurred_at) as occurred_at,
        unioned.thread_id,
        member_key(unioned.platform, unioned.replied_to_native_user_id) as replied_to_member_key,
        {{ extract_brand_links('unioned.text', 'brand_hosts.brand_hosts') }} as brand_links,
        unioned.text_length,
        unioned.text
    from unioned
    cross join brand_hosts
)

select * from final
