-- The interest of each community space: communities.space_interests of the brand file.
{{ brand_rows(
    brand_var('space_interests', []),
    [['platform', 'varchar'], ['space_name', 'varchar'], ['interest', 'varchar']]
) }}
