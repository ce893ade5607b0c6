-- Staff accounts by platform (staff.ids of the brand file, var staff_ids): staff without a company
-- e-mail. Ids stay in staging: the users models turn them into is_employee and hash the ids.
{%- set rows = [] -%}
{%- for platform, ids in brand_var('staff_ids', {}).items() -%}
    {%- for account_id in ids -%}
        {%- do rows.append({'platform': platform, 'account_id': account_id}) -%}
    {%- endfor -%}
{%- endfor %}
{{ brand_rows(rows, [['platform', 'varchar'], ['account_id', 'varchar']]) }}
