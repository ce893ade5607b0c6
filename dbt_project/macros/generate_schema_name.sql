{#-
    Use a model's custom schema name as is (staging, intermediate, marts, seeds) instead of
    dbt's default `<target schema>_<custom schema>`, so tables sit where every tool expects them.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
