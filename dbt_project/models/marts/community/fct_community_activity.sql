-- int_community_activities without the text: marts carry lengths and links, never what was said.
with

activities as (
    select * from {{ ref('int_community_activities') }}
),

final as (
    select
        activity_id,
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
