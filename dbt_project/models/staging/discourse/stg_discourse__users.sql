with

source as (
    select * from {{ source('discourse', 'users') }}
),

employee_domains as (
    select distinct lower(trim(domain)) as domain from {{ ref('employee_email_domains') }}
),

renamed as (
    select
        user_id,
        username,
        nullif(trim(name), '') as full_name,
        lower(nullif(trim(email), '')) as email,
        coalesce(
            lower(nullif(trim(email_domain), '')),
            lower(nullif(split_part(email, '@', 2), ''))
        ) as email_domain,
        coalesce(admin, false) as is_admin,
        coalesce(moderator, false) as is_moderator,
        trust_level,
        coalesce(staged, false) as is_staged,
        -- Discourse's own accounts (system, discobot) have negative ids
        user_id < 0 as is_system,
        created_at,
        last_seen_at,
        _forum_url as forum_url,
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
