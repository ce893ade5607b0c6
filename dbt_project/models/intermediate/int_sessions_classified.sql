with

sessions as (
    select * from {{ ref('stg_ga4__sessions') }}
),

-- the rules of METRICS.md §1 live in macros/classify_traffic.sql, shared with int_leads_classified
classified as (
    {{ classify_traffic('sessions') }}
)

select * from classified
