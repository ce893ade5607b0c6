with

source as (
    select * from {{ source('ga4', 'sessions_daily') }}
),

renamed as (
    select
        "date" as session_date,
        _property_id as property_id,
        {{ normalise_source('session_source') }} as source,
        {{ normalise_medium('session_medium') }} as medium,
        coalesce(nullif(trim(session_campaign_name), ''), '(not set)') as campaign,
        {{ normalise_landing_path('landing_page_plus_query_string') }} as landing_path,
        landing_page_plus_query_string,
        device_category,
        coalesce(sessions, 0) as sessions,
        coalesce(engaged_sessions, 0) as engaged_sessions,
        coalesce(key_events, 0) as key_events,
        coalesce(total_users, 0) as total_users,
        coalesce(new_users, 0) as new_users,
        coalesce(_subject_to_thresholding, false) as is_subject_to_thresholding,
        coalesce(_data_loss_from_other_row, false) as has_data_loss_from_other_row,
        _loaded_at as loaded_at,
        _run_id as run_id
    from source
)

select * from renamed
