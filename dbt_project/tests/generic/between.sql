{#-
    between: every value of the column lies in [min_value, max_value] (either bound optional).
    Nulls pass: test them with not_null where they are not allowed.
-#}
{% test between(model, column_name, min_value=none, max_value=none) %}

select {{ column_name }}
from {{ model }}
where not (
    true
    {%- if min_value is not none %}
    and {{ column_name }} >= {{ min_value }}
    {%- endif %}
    {%- if max_value is not none %}
    and {{ column_name }} <= {{ max_value }}
    {%- endif %}
)

{% endtest %}
