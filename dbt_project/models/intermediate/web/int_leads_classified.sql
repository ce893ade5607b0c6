{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='lead_date',
        on_schema_change='sync_all_columns',
        post_hook="{{ delete_days_without_rows(ref('stg_ga4__leads'), 'lead_date') }}"
    )
}}
{#- Every lead, classified by the attributes of the session in which it converted, under the
    rules of int_sessions_classified, whose body it shares (classified_days in
    macros/classify_traffic.sql): a nightly run rebuilds only the days loaded since the last
    build (macros/incremental_days.sql). -#}
{{ classified_days(ref('stg_ga4__leads'), 'lead_date') }}
