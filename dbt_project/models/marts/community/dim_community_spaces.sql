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

discord_channel_names as (
    select
        trim(channel_id) as channel_id,
        channel_name,
        is_private
    from {{ ref('discord_channels') }}
),

space_interests as (
    select
        lower(trim(platform)) as platform,
        lower(trim(space_name)) as space_name,
        lower(trim(interest)) as interest
    from {{ ref('space_interests') }}
),

{%- set names = var('community_names') %}

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

spaces as (
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

final as (
    select
        spaces.space_id,
        spaces.platform,
        spaces.community,
        spaces.space_name,
        coalesce(space_interests.interest, 'general') as interest,
        coalesce(spaces.is_private, false) as is_private
    from spaces
    left join space_interests
        on spaces.platform = space_interests.platform
        and lower(trim(spaces.space_name)) = space_interests.space_name
)

select * from final
