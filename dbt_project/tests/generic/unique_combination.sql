{#-
    unique_combination: no two rows share the same values of `columns` (a table's grain).
    Fails with each duplicated combination and how often it occurs.
-#}
{% test unique_combination(model, columns) %}

select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
