-- A failure means a week's rows do not add up to all of its leads: rows were lost or counted twice.
with

gap as (
    select * from {{ ref('mart_attribution_gap') }}
),

weeks as (
    select
        week_start,
        sum(share_of_week) as total_share,
        count(distinct dark_funnel_share) as dark_funnel_values
    from gap
    group by week_start
)

select *
from weeks
where abs(total_share - 1) > 1e-9
    or dark_funnel_values > 1
