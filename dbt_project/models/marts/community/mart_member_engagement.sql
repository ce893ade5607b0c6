{%- set love_weights = var('love_weights') -%}
with

activities as (
    select * from {{ ref('fct_community_activity') }}
),

members as (
    select * from {{ ref('dim_community_members') }}
),

as_of as (
    select max(occurred_at)::date as as_of_date from activities
),

-- the trailing window ends on the last loaded day (inclusive)
recent_activities as (
    select activities.*
    from activities
    cross join as_of
    where activities.occurred_at::date > as_of.as_of_date - {{ var('engagement_window_days') }}
        and activities.occurred_at::date <= as_of.as_of_date
),

activity_counts as (
    select
        member_key,
        count(*) filter (where activity_type = 'thread_start') as thread_starts,
        count(*) filter (where activity_type = 'reply') as replies,
        count(*) filter (where activity_type = 'message') as messages,
        count(*) filter (where activity_type = 'reaction') as reactions,
        count(*) as activities,
        -- null when the brand's domains are not set (brand.domains): unknown, not 0
        coalesce(sum(len(brand_links)), {{ 0 if brand_domains_set() else 'null' }})::bigint as brand_links_shared,
        count(distinct space_id) as spaces_active
    from recent_activities
    group by member_key
),

-- reach: the other members this member replied to, or was replied to by
reply_pairs as (
    select
        member_key,
        replied_to_member_key as other_member_key
    from recent_activities
    where activity_type = 'reply' and replied_to_member_key is not null
    union
    select
        replied_to_member_key as member_key,
        member_key as other_member_key
    from recent_activities
    where activity_type = 'reply' and replied_to_member_key is not null
),

reach as (
    select
        member_key,
        count(distinct other_member_key) as reach
    from reply_pairs
    where other_member_key <> member_key
    group by member_key
),

-- docs/metrics.md §4: reach is measured only on a platform with a thread start or reply in the
-- window; without threads (a Slack workspace before 2017) nobody can be seen replying to anyone
platforms_with_threads as (
    select distinct platform
    from recent_activities
    where activity_type in ('thread_start', 'reply')
),

member_scores as (
    select
        members.member_key,
        members.platform,
        members.is_employee,
        as_of.as_of_date,
        coalesce(activity_counts.thread_starts, 0) as thread_starts,
        coalesce(activity_counts.replies, 0) as replies,
        coalesce(activity_counts.messages, 0) as messages,
        coalesce(activity_counts.reactions, 0) as reactions,
        coalesce(activity_counts.activities, 0) as activities,
        (
            {{ love_weights.thread_start }} * coalesce(activity_counts.thread_starts, 0)
            + {{ love_weights.reply }} * coalesce(activity_counts.replies, 0)
            + {{ love_weights.message }} * coalesce(activity_counts.messages, 0)
            + {{ love_weights.reaction }} * coalesce(activity_counts.reactions, 0)
        )::double as love,
        case when platforms_with_threads.platform is not null then coalesce(reach.reach, 0) end as reach,
        case
            when platforms_with_threads.platform is null then 'no threads on this platform in the window'
        end as reach_null_reason,
        coalesce(activity_counts.brand_links_shared, {{ 0 if brand_domains_set() else 'null' }}) as brand_links_shared,
        coalesce(activity_counts.spaces_active, 0) as spaces_active
    from members
    cross join as_of
    left join activity_counts on members.member_key = activity_counts.member_key
    left join reach on members.member_key = reach.member_key
    left join platforms_with_threads on members.platform = platforms_with_threads.platform
    where not members.is_bot
),

-- the love rank among non-employees (ties share a rank), against the top share of them
members_ranked as (
    select
        *,
        case
            when not is_employee
                then rank() over (partition by is_employee order by love desc)
        end as love_rank_non_employee,
        count(*) filter (where not is_employee) over () as non_employees
    from member_scores
),

member_levels as (
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
        reach_null_reason,
        brand_links_shared,
        spaces_active,
        case
            when activities = 0 then '4_observer'
            when not is_employee
                and love >= {{ var('advocate_min_love') }}
                -- an unknown reach (no threads) is not a reach of 5: no advocate by love alone
                and reach >= {{ var('advocate_min_reach') }}
                and love_rank_non_employee <= ceil({{ var('advocate_top_share') }} * non_employees)
                then '1_advocate'
            when love >= {{ var('contributor_min_love') }} then '2_contributor'
            else '3_participant'
        end as level
    from members_ranked
),

final as (
    select
        *,
        level = '1_advocate' as is_advocate_candidate
    from member_levels
)

select * from final
