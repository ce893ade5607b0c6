-- docs/metrics.md §4: in mart_member_engagement reach is null exactly when reach_null_reason says
-- why, and a member whose reach is unknown is never an advocate.
with

engagement as (
    select * from {{ ref('mart_member_engagement') }}
),

contradictions as (
    select *
    from engagement
    where (reach is null) <> (reach_null_reason is not null)
        or (reach is null and is_advocate_candidate)
)

select * from contradictions
