-- stg_meta__pixel_events_hourly has one row per hour x event (docs/metrics.md §5): any row returned is a duplicate.
select
    hour_start,
    event,
    count(*) as n_rows
from {{ ref('stg_meta__pixel_events_hourly') }}
group by 1, 2
having count(*) > 1
