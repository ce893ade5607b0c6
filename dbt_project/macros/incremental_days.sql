{#-
    Incremental facts rebuilt by the day (int_sessions_classified, int_leads_classified,
    int_search_queries_branded). Each is `materialized='incremental'` with
    `incremental_strategy='delete+insert'` and `unique_key=<its date column>`: a run deletes the
    days it selects and inserts them again, and leaves every other day's rows as they are.

    Which days a run selects (days_to_rebuild): raw_<source>.* replaces a day whole and stamps
    every row of that load with `_loaded_at` (staging: `loaded_at`), and each model keeps the
    stamp of the load it was built from. A day is rebuilt when its stamp in staging differs from
    the stamp the model holds for it, or it is in one and not the other. That covers the nightly
    run's re-pull of the trailing days and a manual backfill of a day a year ago alike, and it
    does not depend on clocks: "days >= max(day) - N" would miss the backfill, and "stamps later
    than the model's newest stamp" would miss raw rows restored from a backup.
    A day also is rebuilt when its rows were built under other rules (rules_fingerprint): a seed
    or var the model reads, or the model's own SQL, has changed since. So editing a seed and
    running the refresh reclassifies the whole history, as it did when these were tables. A change
    to a macro the model calls (classified_days, classify_traffic, normalise_*) is not seen: run
    `dbt build --full-refresh --select <model>+` after one.
-#}

{#- The rules a model's rows were built under, as a SQL expression (varchar): an md5 over the
    listed vars' values and the model's SQL (known when compiling) and the listed seeds' rows
    (read when the query runs, a few hundred rows). -#}
{% macro rules_fingerprint(seeds=[], vars=[]) -%}
    {%- set compiled_parts = [model.raw_code] -%}
    {%- for name in vars -%}
        {%- do compiled_parts.append(name ~ '=' ~ tojson(brand_var(name))) -%}
    {%- endfor -%}
    md5(concat_ws('|',
        '{{ local_md5(compiled_parts | join("|")) }}'
        {%- for seed in seeds %},
        (
            select coalesce(string_agg(cast(seed_row as varchar), ';' order by cast(seed_row as varchar)), '')
            from {{ ref(seed) }} as seed_row
        )
        {%- endfor %}
    ))
{%- endmacro %}

{#- The days an incremental run rebuilds (see the top of this file): a select of `date_column`.
    `source_relation` is the staging relation the model reads, with `date_column` and
    `loaded_at`; `current_rules` names the model's one-row CTE holding its rules_fingerprint
    (computed once: inside the aggregate below it would run once per row). A table built before
    the model kept stamps and fingerprints has every day rebuilt once (with
    on_schema_change='sync_all_columns' the columns are added first). -#}
{% macro days_to_rebuild(source_relation, date_column, current_rules='current_rules') -%}
    {%- set has_stamps = built_with_columns(['loaded_at', 'rules_fingerprint']) -%}
    {%- if has_stamps %}
    select coalesce(loaded_days.{{ date_column }}, built_days.{{ date_column }}) as {{ date_column }}
    from (
        select {{ date_column }}, max(loaded_at) as loaded_at
        from {{ source_relation }}
        group by {{ date_column }}
    ) as loaded_days
    full outer join (
        select
            {{ date_column }},
            max(loaded_at) as loaded_at,
            bool_and(rules_fingerprint = (select rules_fingerprint from {{ current_rules }})) as has_current_rules
        from {{ this }}
        group by {{ date_column }}
    ) as built_days
        on loaded_days.{{ date_column }} = built_days.{{ date_column }}
    where loaded_days.loaded_at is distinct from built_days.loaded_at
        or not coalesce(built_days.has_current_rules, false)
    {%- else %}
    select distinct {{ date_column }}
    from {{ source_relation }}
    {%- endif %}
{%- endmacro %}

{#- Post-hook of the day-incremental models: delete+insert replaces only the days that still have
    rows, so a day emptied in raw (replace_days with no rows) is deleted here, in the same
    transaction. A no-op on full refreshes and first builds. -#}
{% macro delete_days_without_rows(source_relation, date_column) -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where {{ date_column }} not in (select distinct {{ date_column }} from {{ source_relation }})
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- When dbt built a row (the invocation's start, UTC): rows of days a run did not rebuild keep
    the time of the run that did. -#}
{% macro built_at() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}
