with

slack_channels as (
    select * from {{ ref('stg_slack__channels') }}
),

discourse_categories as (
    select * from {{ ref('stg_discourse__categories') }}
),

space_interests as (
    select
        lower(trim(platform)) as platform,
        lower(trim(space_name)) as space_name,
        lower(trim(interest)) as interest
    from {{ ref('space_interests') }}
),

{%- set names = var('community_names') %}

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
