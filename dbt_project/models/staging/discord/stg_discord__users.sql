-- Discord's bot API lists a server's members only with the privileged Server Members intent, so
-- the people are the authors of the loaded messages. No e-mail: Discord never shares it with a
-- bot, so nobody on Discord can be recognised as an employee (seed employee_email_domains).
with

messages as (
    select * from {{ ref('stg_discord__messages') }}
),

final as (
    select
        author_id as user_id,
        bool_or(is_bot_author) as is_bot,
        false as is_employee,
        min(posted_at) as first_message_at,
        max(posted_at) as last_message_at
    from messages
    where author_id is not null
    group by author_id
)

select * from final
