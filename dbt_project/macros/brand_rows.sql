{#-
    brand_rows(rows, columns): a select of the rows of a brand var (orchestration/brand.py passes
    the brand file as dbt vars; dbt_project.yml lists them, empty by default). `rows` is a list of
    mappings with the keys of `columns`, a list of [name, type] pairs; an empty list gives an empty
    relation with those columns, so an unset setting reads as "no rows", never as another brand's.
-#}
{% macro brand_rows(rows, columns) -%}
    {%- if rows | length == 0 -%}
    select
        {%- for name, type in columns %}
        cast(null as {{ type }}) as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    where false
    {%- else -%}
    select
        {%- for name, type in columns %}
        cast({{ name }} as {{ type }}) as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    from (
        values
        {%- for row in rows %}
        ({% for name, type in columns %}{{ brand_literal(row[name]) }}{{ ", " if not loop.last }}{% endfor %}){{ "," if not loop.last }}
        {%- endfor %}
    ) as brand_values ({% for name, type in columns %}{{ name }}{{ ", " if not loop.last }}{% endfor %})
    {%- endif -%}
{%- endmacro %}

{#- A SQL literal of a var's value: text quoted, booleans as true/false, none as null. -#}
{% macro brand_literal(value) -%}
    {%- if value is none -%}null
    {%- elif value is sameas true -%}true
    {%- elif value is sameas false -%}false
    {%- else -%}'{{ value | string | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}

{#- The list var `name` (plain strings) as rows of one column `column`. -#}
{% macro brand_list_rows(name, column) -%}
    {%- set rows = [] -%}
    {%- for value in brand_var(name, []) -%}
        {%- do rows.append({column: value}) -%}
    {%- endfor -%}
    {{ brand_rows(rows, [[column, 'varchar']]) }}
{%- endmacro %}

{#- True when the brand file sets any brand term or pattern (branded search figures need one). -#}
{% macro brand_terms_set() -%}
    {{ return((brand_var('brand_terms', []) | length) + (brand_var('brand_patterns', []) | length) > 0) }}
{%- endmacro %}
