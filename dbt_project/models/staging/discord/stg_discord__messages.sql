{#-
    Discord is optional: raw_discord.messages exists only once Discord has been switched on. The
    source() call comes first and unconditionally, so dbt records the dependency (and Dagster's
    lineage joins the Discord asset) even when the table is missing; when adapter.get_relation
    finds no table, the model is an empty relation with the raw table's columns and types, and
    every community model builds with no Discord rows. A view: the next build after Discord is
    switched on reads the table.
-#}
{%- set raw_messages = source('discord', 'messages') -%}
{%- set loaded = adapter.get_relation(
    database=raw_messages.database,
    schema=raw_messages.schema,
    identifier=raw_messages.identifier,
) if execute else none -%}

with

source as (
    {%- if loaded is not none %}
    select * from {{ raw_messages }}
    {%- else %}
    -- Discord is not loaded: no rows, the columns orchestration/discord/assets.py writes
    select
        null::date as "date",
        null::varchar as channel_id,
        null::varchar as message_id,
        null::varchar as author_id,
        null::varchar as author_username,
        null::boolean as author_is_bot,
        null::bigint as "type",
        null::varchar as content,
        null::timestamptz as "timestamp",
        null::timestamptz as edited_timestamp,
        null::varchar as message_reference_id,
        null::varchar as thread_id,
        null::varchar as reactions,
        null::timestamp as _loaded_at,
        null::varchar as _run_id
    where false
    {%- endif %}
),

-- the username stays behind: nothing downstream needs it, and no name leaves the raw layer
renamed as (
    select
        message_id,
        channel_id,
        "date" as message_date,
        author_id,
        coalesce(author_is_bot, false) as is_bot_author,
        "type" as message_type,
        content,
        "timestamp" as posted_at,
        edited_timestamp as edited_at,
        message_reference_id as referenced_message_id,
        thread_id as started_thread_id,
        reactions,
        coalesce(
            list_sum(list_transform(from_json(reactions, '[{"count": "BIGINT"}]'), r -> r.count)),
            0
        )::bigint as reaction_count,
        _loaded_at as loaded_at
    from source
),

final as (
    select
        *,
        -- type 19 is Discord's reply; message_reference alone also marks pins, forwards, crossposts
        message_type = 19 as is_reply,
        -- joins, pins, boosts, thread notices, ...: anything but a default message or a reply
        message_type not in (0, 19) as is_system_message
    from renamed
)

select * from final
