{#-
    Data tests scoped to what a night wrote (issue 20 point 2). dbt wraps the relation every
    generic test reads in get_where_subquery, with the test's `where` config. dbt_project.yml gives
    the tests of the large per-day relations (staging over raw GA4 and Search Console, the
    day-incremental facts) a `where` on their load or build stamp against the placeholder
    __tests_since__:

    - the environment variable DBT_DATA_TESTS_SINCE set (a UTC time, `YYYY-MM-DD HH:MM:SS`): the
      placeholder is that time, so a test reads only the rows loaded or rebuilt since then. The
      nightly run sets it to its own start (orchestration/dbt/assets.py), so its blocking checks
      still cover every row it wrote and skip the history it did not touch;
    - unset (every other build: the weekly full-test night, backfills, `make demo`, `make test`):
      a `where` holding the placeholder is dropped and the test reads every row.

    A `where` without the placeholder works as dbt's own.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where and '__tests_since__' in where -%}
        {%- set since = env_var('DBT_DATA_TESTS_SINCE', '') | trim -%}
        {%- if since -%}
            {#- a malformed time stops the build here, naming the variable, not inside the SQL -#}
            {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:.]+', since) -%}
                {{ exceptions.raise_compiler_error(
                    "DBT_DATA_TESTS_SINCE=" ~ since ~ " is not a UTC time like 2026-12-06 02:00:00: "
                    ~ "set it to one, or unset it to test every row") }}
            {%- endif -%}
            {%- set where = where | replace('__tests_since__', "cast('" ~ since ~ "' as timestamp)") -%}
        {%- else -%}
            {%- set where = none -%}
        {%- endif -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) as dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
