with

source as (
    select * from {{ source('slack', 'channels') }}
),

renamed as (
    select
        channel_id,
        name as channel_name,
        coalesce(is_private, false) as is_private,
        coalesce(is_archived, false) as is_archived,
        created_at,
        nullif(topic, '') as topic,
        nullif(purpose, '') as purpose,
        _loaded_at as loaded_at
    from source
)

select * from renamed
