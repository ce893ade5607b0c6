{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['member_key', 'space_id'],
        on_schema_change='append_new_columns',
        post_hook="{{ delete_firsts_without_activities() }}"
    )
}}
-- Each member's first and last activity in each space, and first thread start or reply there: the
-- firsts mart_community_health_weekly reads (a member's first week, a community's first thread
-- week) and the span dim_community_members reads (first seen, last active), instead of an
-- aggregate over every activity each night. Incremental by member and space: a run updates the
-- pairs active on a day fct_community_activity rebuilt since the last run (their kept firsts and
-- last and that day's activities: a first moves earlier when an older day arrives, the last later
-- when a newer one does) and recomputes from all their activities the pairs whose kept first or
-- last lies on such a day or on a day that is gone (a late correction may have withdrawn it: the
-- first moves later, the last earlier, or the pair goes).
with

activities as (
    select * from {{ ref('fct_community_activity') }}
),

-- what a first is taken from: who, where, when, and whether it started or replied to a thread
member_activities as (
    select
        activities.member_key,
        activities.space_id,
        activities.platform,
        activities.activity_date,
        activities.activity_type in ('thread_start', 'reply') as is_thread_activity,
        activities.occurred_at
    from activities
),

{% if is_incremental() -%}
{#- a table built before it kept the span (first_activity_at, last_activity_at): every pair is
    recomputed once, and the span columns, added by on_schema_change, are not read before -#}
{%- set has_spans = built_with_columns(['first_activity_at', 'last_activity_at']) %}
kept_firsts as (
    select * from {{ this }}
),

-- the days fct_community_activity rebuilt since this model last ran: it stamps every row of a day
-- it rebuilds with the run's start (built_at), and this model's rows carry the start of the run
-- that built them, so a day rebuilt after the latest of those is news here
rebuilt_days as (
    select distinct activity_date
    from activities
    where built_at > (select max(kept_firsts.built_at) from kept_firsts)
),

loaded_days as (
    select distinct activity_date from activities
),

rebuilt_activities as (
    select member_activities.*
    from member_activities
    inner join rebuilt_days on member_activities.activity_date = rebuilt_days.activity_date
),

-- the pairs whose kept first or last is on a rebuilt day or on a day fct_community_activity no
-- longer has: their activity there may be gone, so they are recomputed from all their activities
lost_firsts as (
    select
        member_key,
        space_id
    from kept_firsts
    {%- if has_spans %}
    where first_activity_date in (select rebuilt_days.activity_date from rebuilt_days)
        or first_thread_date in (select rebuilt_days.activity_date from rebuilt_days)
        or cast(last_activity_at as date) in (select rebuilt_days.activity_date from rebuilt_days)
        or first_activity_date not in (select loaded_days.activity_date from loaded_days)
        or first_thread_date not in (select loaded_days.activity_date from loaded_days)
        or cast(last_activity_at as date) not in (select loaded_days.activity_date from loaded_days)
    {%- endif %}
),

touched_pairs as (
    select distinct
        member_key,
        space_id
    from rebuilt_activities
    union
    select
        member_key,
        space_id
    from lost_firsts
),

{% endif -%}

-- what the firsts are the earliest (and the last the latest) of: every activity on a full build.
-- On an incremental run: every activity of the pairs that lost their first or last; the rebuilt
-- days' activities; and the kept firsts and last of the other touched pairs, which still hold
-- (their days did not change), so an older or newer day that arrives moves them without reading
-- the pair's history
activities_read as (
    select member_activities.*
    from member_activities
    {%- if is_incremental() %}
    inner join lost_firsts
        on member_activities.member_key = lost_firsts.member_key
        and member_activities.space_id = lost_firsts.space_id
    union all
    select * from rebuilt_activities
    union all
    select
        kept_firsts.member_key,
        kept_firsts.space_id,
        kept_firsts.platform,
    {%- if has_spans %}
        unnest([
            kept_firsts.first_activity_date,
            kept_firsts.first_thread_date,
            cast(kept_firsts.last_activity_at as date)
        ]) as activity_date,
        unnest([false, true, false]) as is_thread_activity,
        unnest([kept_firsts.first_activity_at, null, kept_firsts.last_activity_at]) as occurred_at
    {%- else %}
        -- (none: every kept pair is recomputed)
        kept_firsts.first_activity_date as activity_date,
        false as is_thread_activity,
        cast(null as timestamp) as occurred_at
    {%- endif %}
    from kept_firsts
    inner join touched_pairs
        on kept_firsts.member_key = touched_pairs.member_key
        and kept_firsts.space_id = touched_pairs.space_id
    where not exists (
        select 1
        from lost_firsts
        where kept_firsts.member_key = lost_firsts.member_key
            and kept_firsts.space_id = lost_firsts.space_id
    )
    {%- endif %}
),

firsts as (
    select
        member_key,
        space_id,
        any_value(platform) as platform,
        min(activity_date) as first_activity_date,
        min(activity_date) filter (where is_thread_activity) as first_thread_date,
        min(occurred_at) as first_activity_at,
        max(occurred_at) as last_activity_at
    from activities_read
    group by member_key, space_id
),

final as (
    {%- if is_incremental() %}
    -- a touched pair with no activity left gets a row without dates: delete+insert replaces the
    -- kept row with it, and the post-hook deletes it
    select
        touched_pairs.member_key,
        touched_pairs.space_id,
        firsts.platform,
        firsts.first_activity_date,
        firsts.first_thread_date,
        firsts.first_activity_at,
        firsts.last_activity_at,
        {{ built_at() }} as built_at
    from touched_pairs
    left join firsts
        on touched_pairs.member_key = firsts.member_key
        and touched_pairs.space_id = firsts.space_id
    {%- else %}
    select
        member_key,
        space_id,
        platform,
        first_activity_date,
        first_thread_date,
        first_activity_at,
        last_activity_at,
        {{ built_at() }} as built_at
    from firsts
    {%- endif %}
)

select * from final
