-- docs/metrics.md §4: in mart_community_health_weekly the answer figures are null exactly when
-- answered_share_null_reason says why, threads_asked is null only where there are no threads yet,
-- and a week with threads but no questions asked none.
with

health as (
    select * from {{ ref('mart_community_health_weekly') }}
),

contradictions as (
    select *
    from health
    where (threads_answered_pct is null) <> (answered_share_null_reason is not null)
        or (threads_asked is null) <> coalesce(answered_share_null_reason like 'no threads%', false)
        or (answered_share_null_reason = 'no questions' and threads_asked <> 0)
        or (
            threads_answered_pct is null
            and (median_minutes_to_first_response is not null or community_answer_share is not null)
        )
)

select * from contradictions
