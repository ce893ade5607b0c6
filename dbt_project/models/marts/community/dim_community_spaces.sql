with

slack_channels as (
    select * from {{ ref('stg_slack__channels') }}
),

discourse_categories as (
    select * from {{ ref('stg_discourse__categories') }}
),

discord_messages as (
    select * from {{ ref('int_discord_messages_threaded') }}
),

activities as (
    select * from {{ ref('int_community_activities') }}
),

discord_channels as (
    select * from {{ ref('discord_channels') }}
),

space_interests as (
    select * from {{ ref('space_interests') }}
),

discord_channel_names as (
    select
        trim(channel_id) as channel_id,
        channel_name,
        is_private
    from discord_channels
),

-- the seed's names as the spaces' names are matched: trimmed, any case
space_interests_normalised as (
    select
        lower(trim(platform)) as platform,
        lower(trim(space_name)) as space_name,
        lower(trim(interest)) as interest
    from space_interests
),

{%- set names = brand_var('community_names') %}

-- Discord's messages name no channel: the loaded channels (a thread counts in its parent's), named
-- by seed discord_channels, else by their id
discord_loaded_channels as (
    select distinct
        discord_messages.space_channel_id as channel_id,
        coalesce(discord_channel_names.channel_name, discord_messages.space_channel_id) as channel_name,
        coalesce(discord_channel_names.is_private, false) as is_private
    from discord_messages
    left join discord_channel_names
        on discord_messages.space_channel_id = discord_channel_names.channel_id
),

listed_spaces as (
    select
        'slack:' || channel_id as space_id,
        'slack' as platform,
        '{{ names.get("slack", "Slack") }}' as community,
        channel_name as space_name,
        is_private
    from slack_channels

    union all

    select
        'discourse:' || category_id as space_id,
        'discourse' as platform,
        '{{ names.get("discourse", "Discourse") }}' as community,
        category_name as space_name,
        is_private
    from discourse_categories

    union all

    select
        'discord:' || channel_id as space_id,
        'discord' as platform,
        '{{ names.get("discord", "Discord") }}' as community,
        channel_name as space_name,
        is_private
    from discord_loaded_channels
),

-- spaces with activity that no list names (a Slack channel the bot has left, a Discourse post whose
-- topic is not loaded or sits in a category the key cannot see) still are spaces, as active people
-- missing from the user lists still are members: in their platform's community, named by their id
unlisted_spaces as (
    select distinct
        activities.space_id,
        activities.platform
    from activities
    left join listed_spaces on activities.space_id = listed_spaces.space_id
    where listed_spaces.space_id is null
),

spaces as (
    select * from listed_spaces

    union all

    select
        space_id,
        platform,
        case platform
            when 'slack' then '{{ names.get("slack", "Slack") }}'
            when 'discourse' then '{{ names.get("discourse", "Discourse") }}'
            when 'discord' then '{{ names.get("discord", "Discord") }}'
        end as community,
        substr(space_id, length(platform) + 2) as space_name,
        false as is_private
    from unlisted_spaces
),

final as (
    select
        spaces.space_id,
        spaces.platform,
        spaces.community,
        spaces.space_name,
        coalesce(space_interests_normalised.interest, 'general') as interest,
        coalesce(spaces.is_private, false) as is_private
    from spaces
    left join space_interests_normalised
        on spaces.platform = space_interests_normalised.platform
        and lower(trim(spaces.space_name)) = space_interests_normalised.space_name
)

select * from final
