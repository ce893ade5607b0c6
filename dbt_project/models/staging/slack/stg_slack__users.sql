with

source as (
    select * from {{ source('slack', 'users') }}
),

employee_domains as (
    select distinct lower(trim(domain)) as domain from {{ ref('employee_email_domains') }}
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
),

-- docs/metrics.md §3: the employee flag is decided here, where the e-mail still is; nothing downstream
-- of staging sees the e-mail.
final as (
    select
        renamed.*,
        (
            renamed.email_domain is not null
            and renamed.email_domain in (select employee_domains.domain from employee_domains)
        ) as is_employee
    from renamed
)

select * from final
