-- Discord's bot API lists a server's members only with the privileged Server Members intent, so
-- the people are the authors of the loaded messages. No e-mail: Discord never shares it with a
-- bot, so staff on Discord are the user ids the brand file lists (staff.ids.discord).
with

messages as (
    select * from {{ ref('stg_discord__messages') }}
),

staff_ids as (
    select distinct trim(account_id) as account_id
    from {{ ref('staff_accounts') }}
    where platform = 'discord'
),

final as (
    select
        author_id as user_id,
        bool_or(is_bot_author) as is_bot,
        author_id in (select staff_ids.account_id from staff_ids) as is_employee,
        min(posted_at) as first_message_at,
        max(posted_at) as last_message_at
    from messages
    where author_id is not null
    group by author_id
)

select * from final
