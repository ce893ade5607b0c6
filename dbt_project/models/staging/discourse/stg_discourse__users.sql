with

source as (
    select * from {{ source('discourse', 'users') }}
),

employee_domains as (
    select distinct lower(trim(domain)) as domain from {{ ref('employee_email_domains') }}
),

-- staff.ids.discourse of the brand file: user ids or usernames, any case
staff_ids as (
    select distinct lower(trim(account_id)) as account_id
    from {{ ref('staff_accounts') }}
    where platform = 'discourse'
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

-- docs/metrics.md §3: the employee (staff) flag is decided here, where the e-mail still is; nothing
-- downstream of staging sees the e-mail. Staff: a staff e-mail domain, Discourse's staff (admins and
-- moderators: the forum's own `staff` group), or a staff id or username of the brand file.
final as (
    select
        renamed.*,
        (
            coalesce(renamed.email_domain in (select employee_domains.domain from employee_domains), false)
            or renamed.is_admin
            or renamed.is_moderator
            or cast(renamed.user_id as varchar) in (select staff_ids.account_id from staff_ids)
            or lower(renamed.username) in (select staff_ids.account_id from staff_ids)
        ) as is_employee
    from renamed
)

select * from final
