{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='activity_date',
        on_schema_change='append_new_columns',
        post_hook="{{ delete_days_without_activities(ref('int_community_activities')) }}"
    )
}}
-- int_community_activities without the text: marts carry lengths and links, never what was said.
-- activity_id is keyed-hashed like member_key: the intermediate id holds platform user ids (a
-- reaction's or a like's id names who reacted), which would link each member_key to its account.
-- Incremental by day: a nightly run re-hashes only the days whose activities changed
-- (macros/incremental_windows.sql); the keyed hash is the costly part of a row.
with

activities as (
    select * from {{ ref('int_community_activities') }}
),

-- what each day's activities hold, as one hash (the text is not in this model: not hashed)
day_fingerprints as (
    select
        cast(occurred_at as date) as date_day,
        count(*) || ':' || bit_xor(
            hash(
                activity_id, platform, space_id, member_key, activity_type, occurred_at, thread_id,
                replied_to_member_key, brand_links, text_length
            )
        ) as activities_fingerprint
    from activities
    group by cast(occurred_at as date)
),

{% if is_incremental() -%}
-- the days whose activities changed since this model read them (or are gone)
changed_days as (
    {{ changed_days('day_fingerprints', ['activities_fingerprint'], this_date='activity_date') }}
),

{% endif -%}

final as (
    select
        member_key('activity', activities.activity_id) as activity_id,
        activities.platform,
        activities.space_id,
        activities.member_key,
        activities.activity_type,
        activities.occurred_at,
        activities.thread_id,
        activities.replied_to_member_key,
        activities.brand_links,
        activities.text_length,
        day_fingerprints.date_day as activity_date,
        day_fingerprints.activities_fingerprint,
        {{ built_at() }} as built_at
    from activities
    inner join day_fingerprints
        on cast(activities.occurred_at as date) = day_fingerprints.date_day
    {%- if is_incremental() %}
    where day_fingerprints.date_day in (select changed_days.date_day from changed_days)
    {%- endif %}
)

select * from final
