-- int_community_activities without the text: marts carry lengths and links, never what was said.
-- activity_id is keyed-hashed like member_key: the intermediate id holds platform user ids (a
-- reaction's or a like's id names who reacted), which would link each member_key to its account.
with

activities as (
    select * from {{ ref('int_community_activities') }}
),

final as (
    select
        member_key('activity', activity_id) as activity_id,
        platform,
        space_id,
        member_key,
        activity_type,
        occurred_at,
        thread_id,
        replied_to_member_key,
        brand_links,
        text_length
    from activities
)

select * from final
