-- Host names of the brand's own community sites: brand.community_domains of the brand file.
{{ brand_list_rows('community_domains', 'domain') }}
