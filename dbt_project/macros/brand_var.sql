{#-
    brand_var(name, default): the brand setting `name` (brand_terms, staff_ids, ...; dbt_project.yml
    lists them). Orchestration hands the brand file to dbt in the environment variable
    DBT_BRAND_VARS (JSON, orchestration/brand.py), not as --vars: the dbt command line is logged
    (Dagster's event log, dbt's logs) and staff ids and e-mail domains must not be. A name missing
    from it, or no DBT_BRAND_VARS at all, reads the dbt var (`--vars` or dbt_project.yml's empty
    default), so `dbt build --vars '{...}'` by hand still works.
-#}
{% macro brand_var(name, default=none) -%}
    {%- set from_env = fromjson(env_var('DBT_BRAND_VARS', '{}')) -%}
    {%- if from_env is mapping and name in from_env -%}
        {{ return(from_env[name]) }}
    {%- endif -%}
    {{ return(var(name, default)) }}
{%- endmacro %}
