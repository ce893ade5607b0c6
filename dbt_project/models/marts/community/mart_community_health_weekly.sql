{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='week_start',
        on_schema_change='append_new_columns',
        post_hook="{{ delete_weeks_without_activities(ref('fct_community_activity')) }}"
    )
}}
-- Incremental by ISO week (macros/incremental_weeks.sql): a week's row reads the activities of
-- the days from 28 days before it (retention) to `first_response_window_days` after it (answers),
-- the members' first weeks, the communities' first thread weeks and the employee and community
-- of each member and space. Each row keeps a stamp of those inputs (`inputs_stamp`); a night
-- rebuilds the weeks whose stamp changed and reads only the days their windows span. The firsts
-- (a member's first week ever, a community's first thread week) depend on the whole history:
-- they are read from fct_community_member_firsts, which keeps them incrementally.
with

activities as (
    select * from {{ ref('fct_community_activity') }}
),

spaces as (
    select * from {{ ref('dim_community_spaces') }}
),

members as (
    select * from {{ ref('dim_community_members') }}
),

firsts as (
    select * from {{ ref('fct_community_member_firsts') }}
),

current_rules as (
    select {{ rules_fingerprint(vars=['first_response_window_days']) }} as rules_fingerprint
),

-- every activity twice: once for its own community, once for the 'all' row (home_community keeps
-- its own)
activities_in_weeks as (
    select
        coalesce(spaces.community, activities.platform) as community,
        coalesce(spaces.community, activities.platform) as home_community,
        activities.*,
        coalesce(members.is_employee, false) as is_employee,
        cast(date_trunc('week', activities.occurred_at) as date) as week_start
    from activities
    left join spaces on activities.space_id = spaces.space_id
    left join members on activities.member_key = members.member_key
),

-- each member's first activity and first thread start or reply per space, kept incrementally
-- (fct_community_member_firsts), in the community of the space
member_firsts as (
    select
        coalesce(spaces.community, firsts.platform) as community,
        firsts.member_key,
        firsts.first_activity_date,
        firsts.first_thread_date
    from firsts
    left join spaces on firsts.space_id = spaces.space_id
),

-- docs/metrics.md §4: a community has threads from the ISO week of its first thread start or reply
-- on. Before that (a Slack workspace before 2017, a Discord server where nobody uses replies)
-- nobody can be seen answering, so answers are not measured there rather than reported as 0 %.
first_thread_weeks as (
    select
        community as home_community,
        cast(date_trunc('week', min(first_thread_date)) as date) as first_thread_week
    from member_firsts
    where first_thread_date is not null
    group by community
),

-- each member's first week ever, per community and in `all`
first_weeks as (
    select
        community,
        member_key,
        cast(date_trunc('week', min(first_activity_date)) as date) as first_week
    from (
        select
            community,
            member_key,
            first_activity_date
        from member_firsts
        union all
        select
            'all' as community,
            member_key,
            first_activity_date
        from member_firsts
    ) as member_first_days
    group by community, member_key
),

-- what a week's row reads, as a stamp (macros/incremental_weeks.sql): the day fingerprints of
-- fct_community_activity over its window, the members whose first week it is, and what every
-- week reads (first thread weeks, employees, spaces' communities, the rules)
day_fingerprints as (
    select distinct
        activity_date,
        activities_fingerprint
    from activities
),

new_member_fingerprints as (
    select
        first_week as week_start,
        count(*) || ':' || bit_xor(hash(community, member_key)) as week_fingerprint
    from first_weeks
    group by first_week
),

shared_fingerprint as (
    select
        md5(concat_ws(
            '|',
            (
                select string_agg(home_community || '=' || first_thread_week, ',' order by home_community)
                from first_thread_weeks
            ),
            (select count(*) || ':' || bit_xor(hash(member_key, is_employee)) from members),
            (select count(*) || ':' || bit_xor(hash(space_id, community)) from spaces),
            (select rules_fingerprint from current_rules)
        )) as shared_fingerprint
),

week_stamps as (
    {{ week_window_stamps(
        'day_fingerprints', 'new_member_fingerprints', 'shared_fingerprint',
        days_before=28, days_after=7 + var('first_response_window_days')
    ) }}
),

{% if is_incremental() -%}
-- the weeks whose stamp changed since they were built, or that are new or gone
weeks_to_rebuild as (
    {{ changed_days('week_stamps', ['inputs_stamp'], this_date='week_start') }}
),

{% endif -%}

-- the activities the rebuilt weeks read (every one on a full build)
activities_read as (
    select * from activities_in_weeks
    {%- if is_incremental() %}
    where exists (
        select 1
        from weeks_to_rebuild
        where activities_in_weeks.activity_date
            between weeks_to_rebuild.date_day - 28
            and weeks_to_rebuild.date_day + {{ 7 + var('first_response_window_days') }}
    )
    {%- endif %}
),

activities_with_threads as (
    select
        activities_read.*,
        coalesce(activities_read.week_start >= first_thread_weeks.first_thread_week, false)
            as has_threads
    from activities_read
    left join first_thread_weeks on activities_read.home_community = first_thread_weeks.home_community
),

activities_by_community as (
    select * from activities_with_threads
    union all
    select * replace ('all' as community) from activities_with_threads
),

member_weeks as (
    select distinct
        community,
        week_start,
        member_key
    from activities_by_community
),

activity_counts as (
    select
        community,
        week_start,
        count(*) as activities,
        count(distinct member_key) as active_members,
        count(*) filter (where activity_type = 'thread_start') as threads_started,
        count(*) filter (where is_employee) as employee_activities,
        -- on the `all` row: some community of the week had threads by then
        bool_or(has_threads) as has_threads
    from activities_by_community
    group by community, week_start
),

new_members as (
    select
        community,
        first_week as week_start,
        count(*) as new_members
    from first_weeks
    group by community, first_week
),

-- the threads a member can get an answer on: top-level posts (thread starts and, on Slack and
-- Discord, plain messages nobody replied to) by non-employees, where the community has threads
questions as (
    select
        community,
        week_start,
        thread_id,
        member_key,
        occurred_at
    from activities_by_community
    where activity_type in ('thread_start', 'message')
        and not is_employee
        and has_threads
),

first_responses as (
    select
        questions.community,
        questions.week_start,
        questions.thread_id,
        questions.occurred_at as asked_at,
        arg_min(replies.is_employee, replies.occurred_at) as responder_is_employee,
        min(replies.occurred_at) as first_response_at
    from questions
    left join activities_by_community as replies
        on replies.community = questions.community
        and replies.thread_id = questions.thread_id
        and replies.activity_type = 'reply'
        and replies.member_key <> questions.member_key
        and replies.occurred_at >= questions.occurred_at
    group by questions.community, questions.week_start, questions.thread_id, questions.occurred_at
),

questions_judged as (
    select
        *,
        (
            first_response_at is not null
            and first_response_at <= asked_at + interval '{{ var("first_response_window_days") }} days'
        ) as is_answered,
        date_diff('second', asked_at, first_response_at) / 60.0 as minutes_to_first_response
    from first_responses
),

answer_stats as (
    select
        community,
        week_start,
        count(*) as questions,
        count(*) filter (where is_answered) as answered_questions,
        median(minutes_to_first_response) filter (where is_answered) as median_minutes_to_first_response,
        count(*) filter (where is_answered and not responder_is_employee) as community_answers
    from questions_judged
    group by community, week_start
),

-- of the members active in the 4 weeks before, how many are active this week
retention as (
    select
        this_week.community,
        this_week.week_start,
        count(distinct before.member_key) as members_4w_before,
        count(distinct before.member_key) filter (where now_active.member_key is not null) as retained
    from (
        select distinct
            community,
            week_start
        from member_weeks
    ) as this_week
    inner join member_weeks as before
        on before.community = this_week.community
        and before.week_start >= this_week.week_start - interval '28 days'
        and before.week_start < this_week.week_start
    left join member_weeks as now_active
        on now_active.community = this_week.community
        and now_active.week_start = this_week.week_start
        and now_active.member_key = before.member_key
    group by this_week.community, this_week.week_start
),

final as (
    select
        activity_counts.week_start,
        activity_counts.community,
        activity_counts.active_members,
        coalesce(new_members.new_members, 0) as new_members,
        activity_counts.active_members - coalesce(new_members.new_members, 0) as returning_members,
        activity_counts.activities,
        activity_counts.threads_started,
        case when activity_counts.has_threads then coalesce(answer_stats.questions, 0) end as threads_asked,
        case
            when answer_stats.questions > 0
                then answer_stats.answered_questions / answer_stats.questions
        end::double as threads_answered_pct,
        case
            when not activity_counts.has_threads and activity_counts.community = 'all'
                then 'no threads in any community yet'
            when not activity_counts.has_threads then 'no threads in this community yet'
            when coalesce(answer_stats.questions, 0) = 0 then 'no questions'
        end as answered_share_null_reason,
        answer_stats.median_minutes_to_first_response::double as median_minutes_to_first_response,
        case
            when answer_stats.answered_questions > 0
                then answer_stats.community_answers / answer_stats.answered_questions
        end::double as community_answer_share,
        case
            when retention.members_4w_before > 0
                then retention.retained / retention.members_4w_before
        end::double as retention_4w,
        (activity_counts.employee_activities / activity_counts.activities)::double as employee_activity_share,
        week_stamps.inputs_stamp,
        {{ built_at() }} as built_at
    from activity_counts
    inner join week_stamps on activity_counts.week_start = week_stamps.date_day
    left join new_members
        on activity_counts.community = new_members.community
        and activity_counts.week_start = new_members.week_start
    left join answer_stats
        on activity_counts.community = answer_stats.community
        and activity_counts.week_start = answer_stats.week_start
    left join retention
        on activity_counts.community = retention.community
        and activity_counts.week_start = retention.week_start
    {%- if is_incremental() %}
    where activity_counts.week_start in (select weeks_to_rebuild.date_day from weeks_to_rebuild)
    {%- endif %}
)

select * from final
