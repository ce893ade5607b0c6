{#-
    Normalisation of GA4 session attributes, per docs/metrics.md §1. Used by staging on GA4 rows and
    by the classification on the seeds, so a list entry typed as 'WWW.Slack.com' still matches.
-#}

{#- Source: lower-cased; any scheme such as `android-app://` or `https://`, a `www.` prefix and
    anything after the host (`android-app://com.slack/` -> `com.slack`) removed; empty -> '(not set)'. -#}
{% macro normalise_source(column) -%}
    coalesce(
        nullif(regexp_extract(lower(trim({{ column }})), '^(?:[a-z][a-z0-9+.-]*://)?(?:www\.)?([^/?#]*)', 1), ''),
        '(not set)'
    )
{%- endmacro %}

{#- Medium: lower-cased; empty -> '(not set)'. -#}
{% macro normalise_medium(column) -%}
    coalesce(nullif(lower(trim({{ column }})), ''), '(not set)')
{%- endmacro %}

{#- Landing path: the URL path without scheme and host (if a full URL slipped in), query string or
    fragment; lower-cased; repeated '/' collapsed; no trailing '/' except for the root '/'; always
    a leading '/'. GA4 placeholders such as '(not set)' and '(other)' stay as they are (lower-cased);
    empty -> '(not set)'. -#}
{% macro normalise_landing_path(column) -%}
    {%- set path = "regexp_extract(lower(trim(" ~ column ~ ")), '^(?:[a-z][a-z0-9+.-]*://[^/?#]*)?([^?#]*)', 1)" -%}
    case
        when {{ column }} is null or trim({{ column }}) = '' then '(not set)'
        when starts_with(trim({{ column }}), '(') then lower(trim({{ column }}))
        else '/' || trim(regexp_replace({{ path }}, '/{2,}', '/', 'g'), '/')
    end
{%- endmacro %}
