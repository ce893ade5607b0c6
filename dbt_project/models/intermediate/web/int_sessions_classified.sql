{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='session_date',
        on_schema_change='sync_all_columns',
        post_hook="{{ delete_days_without_rows(ref('stg_ga4__sessions'), 'session_date') }}"
    )
}}
{#- Every GA4 session, with its traffic class (docs/metrics.md §1). The body is shared with
    int_leads_classified (classified_days in macros/classify_traffic.sql): a nightly run rebuilds
    only the days loaded since the last build (macros/incremental_days.sql). -#}
{{ classified_days(ref('stg_ga4__sessions'), 'session_date') }}
