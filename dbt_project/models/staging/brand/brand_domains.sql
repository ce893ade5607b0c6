-- Host names of the brand's web site: brand.domains of the brand file (var brand_domains).
{{ brand_list_rows('brand_domains', 'domain') }}
