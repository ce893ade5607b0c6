{#- Whether the model's table, as built, already has every column of `columns`: the incremental
    macros (incremental_days, incremental_windows, incremental_weeks, community_threads) rebuild
    everything once for a table built before it kept its stamps. In dbt unit tests `this` is a string, the name of its
    fixture, and a fixture has every column. -#}
{% macro built_with_columns(columns) -%}
    {%- if this is string -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set built_columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
    {{ return(columns | reject('in', built_columns) | list | length == 0) }}
{%- endmacro %}
