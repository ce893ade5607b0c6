{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='lead_date',
        on_schema_change='sync_all_columns',
        post_hook="{{ delete_days_without_rows(ref('stg_ga4__leads'), 'lead_date') }}"
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
    {{ days_to_rebuild(ref('stg_ga4__leads'), 'lead_date') }}
),

{% endif -%}

leads as (
    select * from {{ ref('stg_ga4__leads') }}
    {%- if is_incremental() %}
    where lead_date in (select lead_date from days_to_rebuild)
    {%- endif %}
),

-- the same rules as int_sessions_classified (macros/classify_traffic.sql), applied to the
-- attributes of the session in which the lead converted
classified as (
    {{ classify_traffic('leads') }}
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
