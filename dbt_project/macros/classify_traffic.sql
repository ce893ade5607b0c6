{#-
    classify_traffic(rows): the traffic classes of docs/metrics.md §1, shared by every model that
    classifies GA4 session attributes (int_sessions_classified, int_leads_classified).

    `rows` names a CTE (or relation) with the normalised columns of staging: source, medium,
    campaign, landing_path. Returns a select of every column of `rows` plus:
      is_deep_link    the landing path is not typeable and has enough segments or characters
      traffic_class   the first rule that matches, in the order of docs/metrics.md §1
      is_dark_social  traffic_class in (dark_social_messaging, dark_social_direct)
    Every list comes from a seed; the deep-link thresholds from vars.
-#}
{% macro classify_traffic(rows) -%}
with

paid_mediums as (
    select {{ normalise_medium('medium') }} as medium
    from {{ ref('paid_mediums') }}
    where nullif(trim(medium), '') is not null
),

email_mediums as (
    select {{ normalise_medium('medium') }} as medium
    from {{ ref('email_mediums') }}
    where nullif(trim(medium), '') is not null
),

partner_communities as (
    select lower(trim(match_value)) as match_value
    from {{ ref('partner_communities') }}
    where nullif(trim(match_value), '') is not null
),

community_domains as (
    select {{ normalise_source('domain') }} as domain
    from {{ ref('community_domains') }}
    where nullif(trim(domain), '') is not null
),

ai_assistant_sources as (
    select {{ normalise_source('domain') }} as domain
    from {{ ref('ai_assistant_sources') }}
    where nullif(trim(domain), '') is not null
),

dark_social_messaging_sources as (
    select {{ normalise_source('domain') }} as domain
    from {{ ref('dark_social_messaging_sources') }}
    where nullif(trim(domain), '') is not null
),

search_engines as (
    select {{ normalise_source('source') }} as source
    from {{ ref('search_engines') }}
    where nullif(trim(source), '') is not null
),

public_social_sources as (
    select {{ normalise_source('domain') }} as domain
    from {{ ref('public_social_sources') }}
    where nullif(trim(domain), '') is not null
),

social_mediums as (
    select {{ normalise_medium('medium') }} as medium
    from {{ ref('social_mediums') }}
    where nullif(trim(medium), '') is not null
),

typeable_paths as (
    select {{ normalise_landing_path('path') }} as path
    from {{ ref('typeable_paths') }}
    where nullif(trim(path), '') is not null
),

-- the suffix matches run once per distinct source, not once per row
distinct_sources as (
    select distinct source
    from {{ rows }}
),

source_matches as (
    select
        distinct_sources.source,
        exists (
            select 1 from ai_assistant_sources
            where distinct_sources.source = ai_assistant_sources.domain
                or ends_with(distinct_sources.source, '.' || ai_assistant_sources.domain)
        ) as is_ai_assistant_source,
        exists (
            select 1 from dark_social_messaging_sources
            where distinct_sources.source = dark_social_messaging_sources.domain
                or ends_with(distinct_sources.source, '.' || dark_social_messaging_sources.domain)
        ) as is_messaging_source,
        exists (
            select 1 from public_social_sources
            where distinct_sources.source = public_social_sources.domain
                or ends_with(distinct_sources.source, '.' || public_social_sources.domain)
        ) as is_public_social_source
    from distinct_sources
),

with_flags as (
    select
        {{ rows }}.*,
        (
            {{ rows }}.landing_path not in (select path from typeable_paths)
            and (
                -- path segments = slashes, since staging collapses '//' and drops the trailing '/'
                length({{ rows }}.landing_path) - length(replace({{ rows }}.landing_path, '/', ''))
                    >= {{ var('deep_link_min_segments') }}
                or length({{ rows }}.landing_path) >= {{ var('deep_link_min_length') }}
            )
        ) as is_deep_link,
        source_matches.is_ai_assistant_source,
        source_matches.is_messaging_source,
        source_matches.is_public_social_source
    from {{ rows }}
    left join source_matches
        on {{ rows }}.source = source_matches.source
),

classified as (
    select
        *,
        case
            when medium in (select medium from paid_mediums)
                or starts_with(medium, 'paid')
                then 'paid'

            when medium in (select medium from email_mediums)
                then 'email_campaign'

            when source in (select match_value from partner_communities)
                or lower(campaign) in (select match_value from partner_communities)
                or medium = 'partner'
                then 'partner_community'

            when source in (select domain from community_domains)
                or medium = 'community'
                then 'community'

            -- AI, messaging and public social lists match the domain itself or any subdomain of it
            when is_ai_assistant_source
                then 'ai_assistant'

            when is_messaging_source
                then 'dark_social_messaging'

            when medium = 'organic'
                or source in (select source from search_engines)
                then 'organic_search'

            when is_public_social_source
                or medium in (select medium from social_mediums)
                then 'public_social'

            when source = '(direct)'
                and medium in ('(none)', '(not set)')
                and is_deep_link
                then 'dark_social_direct'

            when source = '(direct)'
                then 'direct_typed'

            else 'referral'
        end as traffic_class
    from with_flags
)

select
    * exclude (is_ai_assistant_source, is_messaging_source, is_public_social_source),
    traffic_class in ('dark_social_messaging', 'dark_social_direct') as is_dark_social
from classified
{%- endmacro %}

{#- The seeds and vars classify_traffic reads, for the rules_fingerprint of the models that call
    it (macros/incremental_days.sql): a list added to classify_traffic is added here too. -#}
{% macro classify_traffic_inputs() -%}
    {{ return({
        'seeds': [
            'paid_mediums', 'email_mediums', 'partner_communities', 'community_domains',
            'ai_assistant_sources', 'dark_social_messaging_sources', 'search_engines',
            'public_social_sources', 'social_mediums', 'typeable_paths',
        ],
        'vars': ['deep_link_min_segments', 'deep_link_min_length'],
    }) }}
{%- endmacro %}

{#-
    classified_days(staged, day_column): the whole body of an incremental model that classifies
    one GA4 staging model by day (int_sessions_classified, int_leads_classified). `staged` is the
    ref() of the staging model, `day_column` its date column (the model's unique_key). A nightly
    run rebuilds only the days whose load stamp or rules changed (macros/incremental_days.sql);
    every row carries the rules' fingerprint it was built under and when it was built.
-#}
{% macro classified_days(staged, day_column) -%}
{%- set inputs = classify_traffic_inputs() -%}

with

-- the seeds, vars and SQL these rows are built under, as one hash
current_rules as (
    select {{ rules_fingerprint(seeds=inputs.seeds, vars=inputs.vars) }} as rules_fingerprint
),

{% if is_incremental() -%}
-- the days whose load stamp or rules differ from what this table was built from
days_to_rebuild as (
    {{ days_to_rebuild(staged, day_column) }}
),

{% endif -%}

staged_rows as (
    select * from {{ staged }}
    {%- if is_incremental() %}
    where {{ day_column }} in (select {{ day_column }} from days_to_rebuild)
    {%- endif %}
),

-- the rules of docs/metrics.md §1
classified as (
    {{ classify_traffic('staged_rows') }}
),

final as (
    select
        classified.*,
        current_rules.rules_fingerprint,
        {{ built_at() }} as built_at
    from classified
    cross join current_rules
)

select * from final
{%- endmacro %}
