{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='thread_id',
        on_schema_change='sync_all_columns',
        post_hook="{{ delete_stale_threads() }}"
    )
}}
-- One row per member activity across the community platforms (docs/metrics.md §3), before the text is
-- dropped: fct_community_activity is this without `text`, and the interest refinement of
-- mart_community_interests_weekly reads the keyword found here. Bots and system messages are excluded.
-- Discord (optional) has no rows when it is not loaded; its reactions are not here: Discord's
-- message list counts reactions but does not say who gave them.
-- member_key() is the HMAC UDF of plugins/darksocial_member_key.py (key from MEMBER_HASH_KEY).
-- Incremental by thread: an activity reads only rows of its own thread (a Slack thread, a
-- Discourse topic with its posts' likes, a Discord reply chain), so a run rebuilds the threads
-- whose inputs changed (macros/community_threads.sql) and keeps the others' rows.
with

slack_users as (
    select * from {{ ref('stg_slack__users') }}
),

discourse_users as (
    select * from {{ ref('stg_discourse__users') }}
),

interest_keywords as (
    select * from {{ ref('interest_keywords') }}
),

-- what every row is built under besides its thread's rows: the seeds, brand domains and SQL, and
-- the lists of bots and system users (snapshots, replaced whole by each load)
current_rules as (
    select
        md5(concat_ws(
            '|',
            {{ rules_fingerprint(seeds=['slack_message_subtypes', 'interest_keywords', 'brand_domains']) }},
            (
                select coalesce(string_agg(slack_users.user_id, ',' order by slack_users.user_id), '')
                from slack_users
                where slack_users.is_bot
            ),
            (
                select
                    coalesce(
                        string_agg(discourse_users.user_id::varchar, ',' order by discourse_users.user_id), ''
                    )
                from discourse_users
                where discourse_users.is_system
            )
        )) as rules_fingerprint
),

-- each thread's inputs as one stamp (rows and latest load)
thread_stamps as (
    {{ community_thread_stamps() }}
),

{% if is_incremental() -%}
-- the threads whose stamp or rules differ from what this table was built from
threads_to_rebuild as (
    {{ threads_to_rebuild('thread_stamps', 'current_rules') }}
),

{% endif -%}

slack_messages as (
    select * from {{ ref('stg_slack__messages') }}
    {%- if is_incremental() %}
    where {{ slack_thread_id() }} in (select threads_to_rebuild.thread_id from threads_to_rebuild)
    {%- endif %}
),

discourse_posts as (
    select * from {{ ref('stg_discourse__posts') }}
    {%- if is_incremental() %}
    where {{ discourse_thread_id() }} in (select threads_to_rebuild.thread_id from threads_to_rebuild)
    {%- endif %}
),

discourse_topics as (
    select * from {{ ref('stg_discourse__topics') }}
),

discourse_likes as (
    select * from {{ ref('stg_discourse__post_likes') }}
),

discord_messages as (
    select * from {{ ref('int_discord_messages_threaded') }}
    {%- if is_incremental() %}
    where {{ discord_thread_id() }} in (select threads_to_rebuild.thread_id from threads_to_rebuild)
    {%- endif %}
),

brand_hosts as (
    {{ brand_hosts_relation() }}
),

-- Slack ----------------------------------------------------------------------------------------

slack_bots as (
    select user_id from slack_users
    where is_bot
),

-- system messages (joins, topic changes) and bots' messages are not member activity
slack_member_messages as (
    select *
    from slack_messages
    -- (the flags are null on a plain message: subtype and bot_id are null there)
    where not coalesce(is_system_message, false)
        and not coalesce(is_bot_message, false)
        and user_id is not null
        and user_id not in (select slack_bots.user_id from slack_bots)
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
        'slack:' || member_message.message_id as activity_id,
        'slack:' || member_message.channel_id as space_id,
        member_message.user_id as native_user_id,
        case
            when coalesce(member_message.is_thread_reply, false) then 'reply'
            when coalesce(member_message.is_thread_parent, false) or member_message.reply_count > 0
                then 'thread_start'
            else 'message'
        end as activity_type,
        member_message.posted_at as occurred_at,
        'slack:' || member_message.channel_id || ':'
        || coalesce(member_message.thread_ts, member_message.ts) as thread_id,
        -- Slack threads are flat: a reply answers the thread's parent
        case
            when coalesce(member_message.is_thread_reply, false) then thread_parent.parent_user_id
        end as replied_to_native_user_id,
        member_message.text,
        coalesce(length(member_message.text), 0) as text_length
    from slack_member_messages as member_message
    left join slack_thread_parents as thread_parent
        on member_message.channel_id = thread_parent.channel_id
        and member_message.thread_ts = thread_parent.thread_ts
),

-- One reaction activity per reacting user and emoji. Slack does not say when a reaction was
-- given: it is dated at the message's time.
slack_reaction_rows as (
    select
        message_id,
        channel_id,
        ts,
        thread_ts,
        posted_at,
        unnest(from_json(reactions::json, '[{"name": "VARCHAR", "users": ["VARCHAR"]}]')) as reaction
    from slack_messages
    where reactions is not null
        and not coalesce(is_system_message, false)
),

slack_reactions_by_user as (
    select
        message_id,
        channel_id,
        ts,
        thread_ts,
        posted_at,
        struct_extract(reaction, 'name') as emoji,
        unnest(struct_extract(reaction, 'users')) as user_id
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
        and user_id not in (select slack_bots.user_id from slack_bots)
),

-- Discourse ------------------------------------------------------------------------------------

discourse_system_users as (
    select user_id from discourse_users
    where is_system
),

-- regular posts (post_type 1) by people; moderator/small actions, whispers, the system user's
-- posts and deleted posts are not member activity
discourse_member_posts as (
    select
        discourse_posts.*,
        discourse_topics.category_id
    from discourse_posts
    left join discourse_topics on discourse_posts.topic_id = discourse_topics.topic_id
    where discourse_posts.post_type = 1
        and discourse_posts.action_code is null
        and not discourse_posts.is_system
        and not discourse_posts.is_deleted
        and discourse_posts.user_id >= 0
        and discourse_posts.user_id not in (select discourse_system_users.user_id from discourse_system_users)
        and coalesce(not discourse_topics.is_private_message, true)
),

discourse_all_posts as (
    select
        topic_id,
        post_number,
        user_id
    from discourse_posts
),

discourse_topic_starters as (
    select
        topic_id,
        user_id as starter_user_id
    from discourse_posts
    where post_number = 1
),

discourse_replies_to as (
    select
        member_post.post_id,
        coalesce(replied_post.user_id, topic_starter.starter_user_id) as replied_to_user_id
    from discourse_member_posts as member_post
    left join discourse_all_posts as replied_post
        on member_post.topic_id = replied_post.topic_id
        and member_post.reply_to_post_number = replied_post.post_number
    left join discourse_topic_starters as topic_starter
        on member_post.topic_id = topic_starter.topic_id
    where member_post.post_number > 1
),

discourse_post_activities as (
    select
        'discourse' as platform,
        'discourse:post:' || member_post.post_id as activity_id,
        'discourse:' || coalesce(member_post.category_id::varchar, 'uncategorized') as space_id,
        member_post.user_id::varchar as native_user_id,
        case when member_post.post_number = 1 then 'thread_start' else 'reply' end as activity_type,
        member_post.posted_at as occurred_at,
        'discourse:' || member_post.topic_id as thread_id,
        reply_target.replied_to_user_id::varchar as replied_to_native_user_id,
        -- the cooked HTML carries the links as href; the raw Markdown when the API sent it
        coalesce(member_post.cooked_html, member_post.raw_markdown) as text,
        -- the length a reader sees: the HTML without its tags
        length(
            regexp_replace(coalesce(member_post.cooked_html, member_post.raw_markdown, ''), '<[^>]*>', '', 'g')
        ) as text_length
    from discourse_member_posts as member_post
    left join discourse_replies_to as reply_target on member_post.post_id = reply_target.post_id
),

-- Likes: reactions. Dated when the forum sends the like's time, else at the post's time.
discourse_like_activities as (
    select
        'discourse' as platform,
        'discourse:like:' || discourse_likes.post_id || ':' || discourse_likes.user_id as activity_id,
        'discourse:' || coalesce(liked_post.category_id::varchar, 'uncategorized') as space_id,
        discourse_likes.user_id::varchar as native_user_id,
        'reaction' as activity_type,
        coalesce(discourse_likes.liked_at, liked_post.posted_at) as occurred_at,
        'discourse:' || liked_post.topic_id as thread_id,
        null::varchar as replied_to_native_user_id,
        null::varchar as text,
        0 as text_length
    from discourse_likes
    inner join discourse_member_posts as liked_post on discourse_likes.post_id = liked_post.post_id
    where discourse_likes.user_id >= 0
        and discourse_likes.user_id not in (select discourse_system_users.user_id from discourse_system_users)
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

all_activities as (
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

-- everyone the activities name (their authors and the members they answer), once each:
-- member_key() is a Python UDF, so it runs once per person instead of twice per activity
people as (
    select distinct
        platform,
        native_user_id
    from all_activities
    union
    select distinct
        platform,
        replied_to_native_user_id as native_user_id
    from all_activities
    where replied_to_native_user_id is not null
),

pseudonyms as (
    select
        platform,
        native_user_id,
        member_key(platform, native_user_id) as member_key
    from people
),

keywords as (
    select
        lower(trim(keyword)) as keyword,
        lower(trim(interest)) as interest
    from interest_keywords
),

-- the texts in lower case, once each
lowered_texts as (
    select
        activity_id,
        lower(text) as lowered_text
    from all_activities
    where text is not null
),

-- the keywords each text contains at all (a cheap test, and a necessary one for a whole-word
-- match), materialized: left to the optimizer, both tests became one join condition, and the
-- regular expression, built per keyword, was compiled for every text and keyword (~90 % of this
-- model's full build on 365 large days: 182 s -> 13 s with this CTE)
keyword_candidates as materialized (
    select
        lowered_texts.activity_id,
        lowered_texts.lowered_text,
        keywords.keyword,
        keywords.interest
    from lowered_texts
    inner join keywords
        on contains(lowered_texts.lowered_text, keywords.keyword)
),

-- the first keyword (the longest first; of equally long ones, the first alphabetically) found in
-- the text as whole words: the interest mart_community_interests_weekly gives an activity in a
-- `general` space
keyword_hits as (
    select
        activity_id,
        first(interest order by length(keyword) desc, keyword) as keyword_interest
    from keyword_candidates
    where regexp_matches(lowered_text, '\b' || regexp_escape(keyword) || '\b')
    group by activity_id
),

final as (
    select
        all_activities.activity_id,
        all_activities.platform,
        all_activities.space_id,
        author.member_key,
        all_activities.activity_type,
        -- naive UTC: week and day boundaries never depend on the session's time zone
        timezone('UTC', all_activities.occurred_at) as occurred_at,
        all_activities.thread_id,
        answered.member_key as replied_to_member_key,
        {{ extract_brand_links('all_activities.text', 'brand_hosts.brand_hosts') }} as brand_links,
        all_activities.text_length,
        all_activities.text,
        keyword_hits.keyword_interest,
        thread_stamps.inputs_stamp,
        current_rules.rules_fingerprint,
        {{ built_at() }} as built_at
    from all_activities
    left join pseudonyms as author
        on all_activities.platform = author.platform
        and all_activities.native_user_id = author.native_user_id
    left join pseudonyms as answered
        on all_activities.platform = answered.platform
        and all_activities.replied_to_native_user_id = answered.native_user_id
    left join keyword_hits on all_activities.activity_id = keyword_hits.activity_id
    left join thread_stamps on all_activities.thread_id = thread_stamps.thread_id
    cross join brand_hosts
    cross join current_rules
)

select * from final
