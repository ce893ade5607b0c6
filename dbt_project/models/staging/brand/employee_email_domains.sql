-- Staff e-mail domains: staff.email_domains of the brand file (var employee_email_domains).
{{ brand_list_rows('employee_email_domains', 'domain') }}
