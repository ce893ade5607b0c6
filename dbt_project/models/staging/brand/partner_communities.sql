-- Partner communities by utm_source / utm_campaign value: communities.partners of the brand file.
{{ brand_rows(brand_var('partner_communities', []), [['match_value', 'varchar'], ['partner_community', 'varchar']]) }}
