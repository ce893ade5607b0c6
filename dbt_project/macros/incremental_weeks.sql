{#-
    Weekly marts incremental by ISO week (mart_community_health_weekly): `materialized='incremental'`
    with `incremental_strategy='delete+insert'` and `unique_key='week_start'`. A week's row reads a
    bounded window of days around it (for the health mart: 28 days before, for retention, to
    `first_response_window_days` after the week, for answers) and a few things every week reads
    (a member's first week ever, a community's first thread week, who is an employee, which
    community a space belongs to, the mart's rules).

    Each row keeps the stamp of what its week read (`inputs_stamp`): an md5 over the day
    fingerprints of fct_community_activity (its `activities_fingerprint`, a hash of each day's
    activities, macros/incremental_windows.sql) for every day of the window, the fingerprint of
    the members whose first week it is, and the fingerprint of what every week reads. A run
    rebuilds the weeks whose stamp now differs, or that are new or gone (`changed_days`), and
    reads only the days their windows span. A late correction of an old day changes the stamps of
    the weeks whose windows hold it; one that moves a member's first week changes the stamps of
    the weeks it leaves and joins; a changed rule, employee or space changes every stamp. The
    mart's SQL and its vars are in the stamp too (rules_fingerprint).
-#}

{#- One row per week that has activities (`date_day`: its Monday) with its `inputs_stamp`.
    `day_fingerprints`: a relation of (activity_date, activities_fingerprint), one row a day;
    `week_fingerprints`: (week_start, week_fingerprint), what the week reads besides its days;
    `shared`: a one-row relation of `shared_fingerprint`, what every week reads. -#}
{% macro week_window_stamps(day_fingerprints, week_fingerprints, shared, days_before, days_after) -%}
    select
        weeks.week_start as date_day,
        md5(concat_ws(
            '|',
            (select {{ shared }}.shared_fingerprint from {{ shared }}),
            coalesce(any_value(week_fingerprint.week_fingerprint), ''),
            coalesce(
                string_agg(
                    window_day.activity_date || '=' || window_day.activities_fingerprint,
                    ',' order by window_day.activity_date
                ),
                ''
            )
        )) as inputs_stamp
    from (
        select distinct cast(date_trunc('week', activity_date) as date) as week_start
        from {{ day_fingerprints }}
    ) as weeks
    left join {{ day_fingerprints }} as window_day
        on window_day.activity_date between weeks.week_start - {{ days_before }}
        and weeks.week_start + {{ days_after }}
    left join {{ week_fingerprints }} as week_fingerprint
        on weeks.week_start = week_fingerprint.week_start
    group by weeks.week_start
{%- endmacro %}

{#- Post-hook: delete+insert replaces the weeks a run rebuilt that still have rows; a week whose
    activities are all gone is deleted here. A no-op on full refreshes and first builds. -#}
{% macro delete_weeks_without_activities(source_relation) -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where week_start not in (
        select distinct cast(date_trunc('week', occurred_at) as date) from {{ source_relation }}
    )
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
