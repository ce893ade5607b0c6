{#-
    int_community_activities is incremental by thread (`unique_key='thread_id'`, delete+insert).
    An activity reads only rows of its own thread: a Slack message its thread's parent (Slack
    files a thread's messages under the thread's day, and its reactions are on the message), a
    Discourse post its topic (category, private or not) and the posts it replies to, a like the
    post it is on, a Discord message its reply chain. Besides those, every row reads the rules
    (seeds, brand domains, the model's SQL) and the lists of bots and system users.

    Each row keeps its thread's stamp (`inputs_stamp`: the thread's input rows counted, and their
    latest load) and the rules it was built under. A run rebuilds the threads whose stamp now
    differs, or that are in one and not the other, and every thread when the rules changed. A
    row removed (a deleted message, a post moved to another topic) changes the count; a day
    re-pulled changes the load stamps of its rows. Discord's threaded messages carry no load
    stamp: a hash of the columns read stands in. A thread whose rows build no activity (a bot's
    message, a join notice) keeps no row, so it is rebuilt every run (it costs little: it builds
    nothing).

    The post-hook deletes what delete+insert cannot: the rows of threads that changed and build no
    activity now, or that are gone, and rows built under other rules.
-#}

{%- macro slack_thread_id(messages='') -%}
    'slack:' || {{ messages }}channel_id || ':' || coalesce({{ messages }}thread_ts, {{ messages }}ts)
{%- endmacro %}

{%- macro discourse_thread_id(posts='') -%}
    'discourse:' || {{ posts }}topic_id
{%- endmacro %}

{%- macro discord_thread_id(messages='') -%}
    'discord:' || {{ messages }}space_channel_id || ':' || {{ messages }}thread_root_id
{%- endmacro %}

{#- A select of (thread_id, inputs_stamp), one row per thread with any input row. -#}
{% macro community_thread_stamps() -%}
    select
        {{ slack_thread_id() }} as thread_id,
        count(*) || ':' || coalesce(max(loaded_at)::varchar, '') as inputs_stamp
    from {{ ref('stg_slack__messages') }}
    group by {{ slack_thread_id() }}
    union all
    select
        thread_id,
        count(*) || ':' || coalesce(max(loaded_at)::varchar, '') as inputs_stamp
    from (
        select {{ discourse_thread_id() }} as thread_id, loaded_at
        from {{ ref('stg_discourse__posts') }}
        union all
        select {{ discourse_thread_id() }} as thread_id, loaded_at
        from {{ ref('stg_discourse__topics') }}
        union all
        select {{ discourse_thread_id('liked_post.') }} as thread_id, post_like.loaded_at
        from {{ ref('stg_discourse__post_likes') }} as post_like
        inner join {{ ref('stg_discourse__posts') }} as liked_post on post_like.post_id = liked_post.post_id
    ) as discourse_inputs
    group by thread_id
    union all
    select
        {{ discord_thread_id() }} as thread_id,
        count(*) || ':' || bit_xor(
            hash(
                message_id, author_id, is_bot_author, is_system_message, posted_at, content,
                replied_to_author_id, thread_role
            )
        ) as inputs_stamp
    from {{ ref('int_discord_messages_threaded') }}
    group by {{ discord_thread_id() }}
{%- endmacro %}

{#- The threads an incremental run rebuilds (see the top of this file): a select of `thread_id`.
    `stamps` and `current_rules` name the model's CTEs of thread stamps and its one-row rules. -#}
{% macro threads_to_rebuild(stamps, current_rules) -%}
    {%- set has_stamps = built_with_columns(['inputs_stamp', 'rules_fingerprint']) -%}
    {%- if has_stamps %}
    select coalesce(current_threads.thread_id, built_threads.thread_id) as thread_id
    from {{ stamps }} as current_threads
    full outer join (
        select
            thread_id,
            any_value(inputs_stamp) as inputs_stamp,
            bool_and(rules_fingerprint = (select rules_fingerprint from {{ current_rules }})) as has_current_rules
        from {{ this }}
        group by thread_id
    ) as built_threads
        on current_threads.thread_id = built_threads.thread_id
    where current_threads.inputs_stamp is distinct from built_threads.inputs_stamp
        or not coalesce(built_threads.has_current_rules, false)
    {%- else %}
    {#- built before the model kept stamps: every thread once (the columns are added first) #}
    select thread_id from {{ stamps }}
    {%- endif %}
{%- endmacro %}

{#- Post-hook of int_community_activities (see the top of this file). A no-op on full refreshes
    and first builds. -#}
{% macro delete_stale_threads() -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where thread_id || '|' || coalesce(inputs_stamp, '') not in (
        select thread_id || '|' || inputs_stamp from ({{ community_thread_stamps() }})
    )
        -- this run's rules are those of the rows it built last
        or rules_fingerprint is distinct from (
            select arg_max(rules_fingerprint, built_at) from {{ this }}
        )
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
