{#-
    Brand links of docs/metrics.md §3: the page paths of the brand's site linked in a message or post.

    `text_column`: the text, in any of the platforms' markups: Slack (`<https://x.com/a?b=1&amp;c=2|label>`:
    the URL ends at `|` or `>`, `&amp;` is unescaped), Discourse's cooked HTML (`<a href="...">`:
    the URL ends at the quote) or plain text. URLs start with `http://`, `https://` or `www.`;
    trailing punctuation (`.`, `,`, `)`, ...) is not part of them.
    `brand_hosts`: a SQL expression giving a list of the brand's host names, lower-cased and
    without `www.` (models cross join a one-row CTE built from the seed brand_domains).

    A URL is a brand link when its host, lower-cased and without `www.`, is in `brand_hosts`; it
    becomes its landing path exactly as GA4 landing pages do (macro normalise_landing_path: no
    query string or fragment, lower-cased, no trailing `/` except the root). Returns a sorted list
    of distinct paths (a page linked twice in one post counts once); an empty list when none; null
    when the brand's hosts are not set (brand.domains of the brand file): unknown, not "none".
-#}
{% macro extract_brand_links(text_column, brand_hosts='brand_hosts') -%}
    {%- set url_pattern = "'(?i)(?:https?://|www\\.)[^\\s<>|\"''`]+'" -%}
    {%- set trimmed = "regexp_replace(u, '[.,;:!?)\\]]+$', '')" -%}
    {%- set host = "regexp_extract(lower(u), '^(?:https?://)?(?:www\\.)?([^/?#:]+)', 1)" -%}
    {%- set with_scheme = "(case when lower(u) like 'http%' then u else 'https://' || u end)" -%}
    case when {{ brand_hosts }} is not null then list_sort(list_distinct(list_transform(
        list_filter(
            list_transform(
                regexp_extract_all(replace(coalesce({{ text_column }}, ''), '&amp;', '&'), {{ url_pattern }}),
                lambda u: {{ trimmed }}
            ),
            lambda u: list_contains({{ brand_hosts }}, {{ host }})
        ),
        lambda u: {{ normalise_landing_path(with_scheme) }}
    ))) end
{%- endmacro %}

{#- The one-row relation of the brand's host names for extract_brand_links (model brand_domains,
    from the brand file); null when none is set. -#}
{% macro brand_hosts_relation() -%}
    select list(distinct regexp_replace(lower(trim(domain)), '^www\.', '')) as brand_hosts
    from {{ ref('brand_domains') }}
{%- endmacro %}

{#- True when the brand file sets the site's domains (brand.domains): brand-link figures need them. -#}
{% macro brand_domains_set() -%}
    {{ return(brand_var('brand_domains', []) | length > 0) }}
{%- endmacro %}
