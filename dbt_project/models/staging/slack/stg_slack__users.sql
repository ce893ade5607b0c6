with

source as (
    select * from {{ source('slack', 'users') }}
),

renamed as (
    select
        user_id,
        team_id,
        name as user_name,
        nullif(real_name, '') as real_name,
        nullif(display_name, '') as display_name,
        lower(nullif(trim(email), '')) as email,
        coalesce(
            lower(nullif(trim(email_domain), '')),
            lower(nullif(split_part(email, '@', 2), ''))
        ) as email_domain,
        coalesce(is_bot, false) as is_bot,
        coalesce(is_deleted, false) as is_deleted,
        tz as time_zone,
        _loaded_at as loaded_at
    from source
)

select * from renamed
