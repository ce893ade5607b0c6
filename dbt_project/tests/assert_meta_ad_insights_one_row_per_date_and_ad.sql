-- stg_meta__ad_insights has one row per date x ad (docs/metrics.md §5): any row returned is a duplicate.
select
    "date",
    ad_id,
    count(*) as n_rows
from {{ ref('stg_meta__ad_insights') }}
group by 1, 2
having count(*) > 1
