with

source as (
    select * from {{ source('slack', 'users') }}
),

employee_domains as (
    select distinct lower(trim(domain)) as domain from {{ ref('employee_email_domains') }}
),

staff_ids as (
    select distinct trim(account_id) as account_id
    from {{ ref('staff_accounts') }}
    where platform = 'slack'
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
        coalesce(is_admin, false) or coalesce(is_owner, false) or coalesce(is_primary_owner, false)
            as is_workspace_admin,
        _loaded_at as loaded_at
    from source
),

-- docs/metrics.md §3: the employee (staff) flag is decided here, where the e-mail and the id still
-- are; nothing downstream of staging sees the e-mail. Staff: a staff e-mail domain, a workspace
-- admin or owner, or a staff id of the brand file (staff.ids.slack).
final as (
    select
        renamed.*,
        (
            coalesce(renamed.email_domain in (select employee_domains.domain from employee_domains), false)
            or renamed.is_workspace_admin
            or renamed.user_id in (select staff_ids.account_id from staff_ids)
        ) as is_employee
    from renamed
)

select * from final
