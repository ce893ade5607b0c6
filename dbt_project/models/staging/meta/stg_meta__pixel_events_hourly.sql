with

source as (
    select * from {{ source('meta', 'pixel_events_hourly') }}
),

final as (
    select
        hour_start,
        "date",
        event,
        "count",
        _pixel_id as pixel_id,
        _loaded_at as loaded_at,
        _run_id as run_id
    from source
)

select * from final
