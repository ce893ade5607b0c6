{#-
    Incremental marts over the day-incremental facts (macros/incremental_days.sql): the daily marts
    (mart_dark_social_daily, mart_branded_search_daily) and fct_community_activity are `materialized='incremental'` with
    `incremental_strategy='delete+insert'` keyed on their day. A day's row reads a bounded window
    of days (its trailing 28 days), so a run rebuilds the days whose inputs changed and the days
    whose window reads them, and leaves every other row as it is.

    Which input days changed: the mart keeps, per day, the stamp of the inputs it was built from:
    the upstream fact's `built_at` (max over the day's rows; it changes whenever the fact rebuilds
    the day: a reloaded or backfilled day, a day emptied in raw, a changed seed or rule, since the
    fact rebuilds every day then) and, for a staging input, its `loaded_at`. A day is changed when
    its stamp now differs from the kept one, or it is in one and not the other. A table built
    before the mart kept stamps has null stamps, so every day is rebuilt once. A change to the
    mart's own SQL or vars is not seen: run `dbt build --full-refresh --select <mart>` after one.

    fct_community_activity reads int_community_activities, which is incremental by thread, not by
    day (a member's activity on one day depends on other days: the thread parent a reply answers,
    the post a like is on, the topic's category), so it has no per-day stamp to compare. Its stamp
    is the day's content instead: a hash over every column it reads of the day's rows
    (`activities_fingerprint`); a day whose hash changed is rebuilt. Hashing is native and
    cheap; the keyed hash of each activity id (a Python UDF) is what a rebuild costs.

    mart_community_referrals keeps per share day a window stamp (as macros/incremental_weeks.sql
    does per week) and uses changed_days on it. fct_community_member_firsts recomputes the member
    and space pairs of the days fct_community_activity rebuilt (its built_at) or dropped.
-#}

{#- The days (`date_day`) whose stamps in `stamps` (a relation or CTE of `date_day` and the
    `stamp_columns`) differ from those this model keeps in the same columns for its `this_date`. -#}
{% macro changed_days(stamps, stamp_columns, this_date='"date"') -%}
    {%- set has_stamps = built_with_columns(stamp_columns) -%}
    {%- if has_stamps %}
    select coalesce(current_stamps.date_day, kept_stamps.date_day) as date_day
    from {{ stamps }} as current_stamps
    full outer join (
        select
            {{ this_date }} as date_day,
            {{ stamp_columns | join(', ') }}
        from {{ this }}
    ) as kept_stamps
        on current_stamps.date_day = kept_stamps.date_day
    where
    {%- for column in stamp_columns %}
        {{ 'or ' if not loop.first }}current_stamps.{{ column }} is distinct from kept_stamps.{{ column }}
    {%- endfor %}
    {%- else %}
    {#- built before the model kept stamps: every day once (the columns are added first) #}
    select date_day from {{ stamps }}
    {%- endif %}
{%- endmacro %}

{#- The days of `spine` (a CTE of `date_day`) to rebuild: each changed day and the `days_after`
    days after it (their windows read it), and every spine day this model has no row for yet (a
    history extended at either end). -#}
{% macro days_after_changes(spine, changed, days_after, this_date='"date"') -%}
    select spine_day.date_day
    from {{ spine }} as spine_day
    where exists (
        select 1
        from {{ changed }} as changed_day
        where spine_day.date_day between changed_day.date_day and changed_day.date_day + {{ days_after }}
    )
        or spine_day.date_day not in (select {{ this_date }} from {{ this }})
{%- endmacro %}

{#- Post-hook: delete+insert replaces the days a run rebuilt; a day that left the spine (the
    first or last loaded day moved in) is deleted here. `inputs` lists the [relation, date column]
    pairs whose days span the spine. A no-op on full refreshes and first builds. -#}
{% macro delete_days_outside_spine(this_date, inputs) -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where not coalesce(
        {{ this_date }} between least(
            {%- for relation, column in inputs %}
            (select min({{ column }}) from {{ relation }}){{ ',' if not loop.last }}
            {%- endfor %}
        ) and greatest(
            {%- for relation, column in inputs %}
            (select max({{ column }}) from {{ relation }}){{ ',' if not loop.last }}
            {%- endfor %}
        ),
        false
    )
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of fct_community_activity: a day whose activities are all gone is deleted here. -#}
{% macro delete_days_without_activities(source_relation) -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    -- (a null day: a row built before the model kept days, replaced by this run's rows)
    where activity_date is null
        or activity_date not in (select distinct cast(occurred_at as date) from {{ source_relation }})
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of fct_community_member_firsts: the pairs a run recomputed that have no activity left
    (their row has no first date) are deleted. -#}
{% macro delete_firsts_without_activities() -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where first_activity_date is null
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of mart_community_referrals: delete+insert replaces the share days a run rebuilt
    that still have shares; a day whose shares are all gone is deleted here. -#}
{% macro delete_share_days_without_shares(source_relation) -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where share_date not in (
        select distinct activity_date from {{ source_relation }}
        where len(brand_links) > 0
    )
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
