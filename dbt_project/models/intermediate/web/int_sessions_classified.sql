{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='session_date',
        on_schema_change='sync_all_columns',
        post_hook="{{ delete_days_without_rows(ref('stg_ga4__sessions'), 'session_date') }}"
    )
}}
{#- A nightly run rebuilds only the days loaded since the last build (macros/incremental_days.sql). -#}
{%- set inputs = classify_traffic_inputs() -%}

with

-- the seeds, vars and SQL these rows are built under, as one hash
current_rules as (
    select {{ rules_fingerprint(seeds=inputs.seeds, vars=inputs.vars) }} as rules_fingerprint
),

{% if is_incremental() -%}
-- the days whose load stamp or rules differ from what this table was built from
days_to_rebuild as (
    {{ days_to_rebuild(ref('stg_ga4__sessions'), 'session_date') }}
),

{% endif -%}

sessions as (
    select * from {{ ref('stg_ga4__sessions') }}
    {%- if is_incremental() %}
    where session_date in (select session_date from days_to_rebuild)
    {%- endif %}
),

-- the rules of docs/metrics.md §1 live in macros/classify_traffic.sql, shared with int_leads_classified
classified as (
    {{ classify_traffic('sessions') }}
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
