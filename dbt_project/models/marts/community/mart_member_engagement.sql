{%- set w = var('love_weights') -%}
with

activities as (
    select * from {{ ref('fct_community_activity') }}
),

members as (
    select * from {{ ref('dim_community_members') }}
    where not is_bot
),

as_of as (
    select max(occurred_at)::date as as_of_date from activities
),

-- the trailing window ends on the last loaded day (inclusive)
recent as (
    select activities.*
    from activities
    cross join as_of
    where activities.occurred_at::date > as_of.as_of_date - {{ var('engagement_window_days') }}
        and activities.occurred_at::date <= as_of.as_of_date
),

counts as (
    select
        member_key,
        count(*) filter (where activity_type = 'thread_start') as thread_starts,
        count(*) filter (where activity_type = 'reply') as replies,
        count(*) filter (where activity_type = 'message') as messages,
        count(*) filter (where activity_type = 'reaction') as reactions,
        count(*) as activities,
        coalesce(sum(len(brand_links)), 0)::bigint as brand_links_shared,
        count(distinct space_id) as spaces_active
    from recent
    group by member_key
),

-- reach: the other members this member replied to, or was replied to by
reply_pairs as (
    select member_key, replied_to_member_key as other_member_key
    from recent
    where activity_type = 'reply' and replied_to_member_key is not null
    union
    select replied_to_member_key as member_key, member_key as other_member_key
    from recent
    where activity_type = 'reply' and replied_to_member_key is not null
),

reach as (
    select member_key, count(distinct other_member_key) as reach
    from reply_pairs
    where other_member_key <> member_key
    group by member_key
),

scored as (
    select
        members.member_key,
        members.platform,
        members.is_employee,
        as_of.as_of_date,
        coalesce(counts.thread_starts, 0) as thread_starts,
        coalesce(counts.replies, 0) as replies,
        coalesce(counts.messages, 0) as messages,
        coalesce(counts.reactions, 0) as reactions,
        coalesce(counts.activities, 0) as activities,
        (
            {{ w.thread_start }} * coalesce(counts.thread_starts, 0)
            + {{ w.reply }} * coalesce(counts.replies, 0)
            + {{ w.message }} * coalesce(counts.messages, 0)
            + {{ w.reaction }} * coalesce(counts.reactions, 0)
        )::double as love,
        coalesce(reach.reach, 0) as reach,
        coalesce(counts.brand_links_shared, 0) as brand_links_shared,
        coalesce(counts.spaces_active, 0) as spaces_active
    from members
    cross join as_of
    left join counts on members.member_key = counts.member_key
    left join reach on members.member_key = reach.member_key
),

-- the love rank among non-employees (ties share a rank), against the top share of them
ranked as (
    select
        *,
        case when not is_employee
            then rank() over (partition by is_employee order by love desc)
        end as love_rank_non_employee,
        count(*) filter (where not is_employee) over () as non_employees
    from scored
),

final as (
    select
        member_key,
        platform,
        is_employee,
        as_of_date,
        thread_starts,
        replies,
        messages,
        reactions,
        activities,
        love,
        reach,
        brand_links_shared,
        spaces_active,
        case
            when activities = 0 then '4_observer'
            when not is_employee
                and love >= {{ var('advocate_min_love') }}
                and reach >= {{ var('advocate_min_reach') }}
                and love_rank_non_employee <= ceil({{ var('advocate_top_share') }} * non_employees)
                then '1_advocate'
            when love >= {{ var('contributor_min_love') }} then '2_contributor'
            else '3_participant'
        end as level
    from ranked
)

select
    *,
    level = '1_advocate' as is_advocate_candidate
from final
