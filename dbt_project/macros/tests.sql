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

{#- A partition's build tests that partition (tests of models revised over a window see its last day): without
    this every test would scan every day of every country, and builds would slow down day by day. The filter is
    read when a test is compiled, not when the project is parsed, so one parsed manifest serves every partition
    (`pushgrowth.transform.InProcessDbt`). A test's own `where` config still applies. Overrides dbt's macro. -#}
{% macro get_where_subquery(relation) -%}
  {%- set where = config.get('where', '') -%}
  {%- set partitioned = var('date', none) is not none and var('country', none) is not none -%}
  {%- if where or partitioned -%}
    {%- set filtered -%}
      (select * from {{ relation }} where ({{ where or 'true' }}) and {{ in_partition() }}) dbt_subquery
    {%- endset -%}
    {%- do return(filtered) -%}
  {%- else -%}
    {%- do return(relation) -%}
  {%- endif -%}
{%- endmacro %}
