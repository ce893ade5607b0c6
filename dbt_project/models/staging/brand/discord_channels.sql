-- The names of the loaded Discord channels, by id: communities.discord_channels of the brand file.
{{ brand_rows(
    brand_var('discord_channels', []),
    [['channel_id', 'varchar'], ['channel_name', 'varchar'], ['is_private', 'boolean']]
) }}
