with

slack_users as (
    select * from {{ ref('stg_slack__users') }}
),

discourse_users as (
    select * from {{ ref('stg_discourse__users') }}
),

discord_users as (
    select * from {{ ref('stg_discord__users') }}
),

-- each member's first and last activity per space, kept incrementally: the span is their
-- earliest and latest, not an aggregate over every activity ever each night
member_spans as (
    select * from {{ ref('fct_community_member_firsts') }}
),

-- member_key() is the HMAC UDF of plugins/darksocial_member_key.py: the native id never leaves
-- this model, and no name, handle or e-mail is selected.
platform_users as (
    select
        member_key('slack', user_id) as member_key,
        'slack' as platform,
        is_employee,
        is_bot
    from slack_users

    union all

    select
        member_key('discourse', user_id::varchar) as member_key,
        'discourse' as platform,
        is_employee,
        is_system as is_bot
    from discourse_users

    union all

    -- the authors of the loaded messages; never employees (Discord gives a bot no e-mails)
    select
        member_key('discord', user_id) as member_key,
        'discord' as platform,
        is_employee,
        is_bot
    from discord_users
),

activity_span as (
    select
        member_key,
        platform,
        min(first_activity_at) as first_seen_at,
        max(last_activity_at) as last_active_at
    from member_spans
    group by member_key, platform
),

-- people who are active but missing from the user lists (e.g. a Discourse key without admin
-- rights cannot list users) still are members: not employees, not bots, as far as we know
final as (
    select
        coalesce(platform_users.member_key, activity_span.member_key) as member_key,
        coalesce(platform_users.platform, activity_span.platform) as platform,
        coalesce(platform_users.is_employee, false) as is_employee,
        coalesce(platform_users.is_bot, false) as is_bot,
        activity_span.first_seen_at,
        activity_span.last_active_at
    from platform_users
    full outer join activity_span
        on platform_users.member_key = activity_span.member_key
)

select * from final
