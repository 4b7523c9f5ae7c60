{#- A composite-key uniqueness test without a package dependency (nothing is downloaded at run time). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- Values outside [min_value, max_value] (or (min_value, ...] with min_exclusive) fail. -#}
{% test in_range(model, column_name, min_value=none, max_value=none, min_exclusive=false) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null and (
    false
    {%- if min_value is not none %} or {{ column_name }} {{ '<=' if min_exclusive else '<' }} {{ min_value }}{% endif %}
    {%- if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
)
{% endtest %}
