with

leads as (
    select * from {{ ref('stg_ga4__leads') }}
),

-- the same rules as int_sessions_classified (macros/classify_traffic.sql), applied to the
-- attributes of the session in which the lead converted
classified as (
    {{ classify_traffic('leads') }}
)

select * from classified
