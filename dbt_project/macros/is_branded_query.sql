{#-
    is_branded_query(column): true when the search query in `column` is branded (docs/metrics.md §2):
    it contains any of var `brand_terms` (plain text, case-insensitive) or matches any of the
    regular expressions in var `brand_patterns` (case-insensitive). A null query is not branded.
    Both vars come from the brand file (brand.terms, brand.patterns; orchestration/brand.py). With
    neither set, branded is unknown: null for every query, never false.
-#}
{% macro is_branded_query(column) -%}
    {%- set terms = brand_var('brand_terms', []) -%}
    {%- set patterns = brand_var('brand_patterns', []) -%}
    {%- if not brand_terms_set() -%}
    cast(null as boolean)
    {%- else -%}
    coalesce(
        false
        {%- for term in terms if term | trim %}
        or contains(lower({{ column }}), lower('{{ term | trim | replace("'", "''") }}'))
        {%- endfor %}
        {%- for pattern in patterns if pattern | trim %}
        or regexp_matches({{ column }}, '{{ pattern | replace("'", "''") }}', 'i')
        {%- endfor %}
    , false)
    {%- endif -%}
{%- endmacro %}
