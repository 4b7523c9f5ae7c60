{#- Daily x country partitions: a run with vars {country, date} builds exactly that partition. -#}

{% macro in_partition(date_column='date', country_column='country') -%}
  {%- if var('date') is not none and var('country') is not none -%}
    {{ country_column }} = '{{ var("country") }}' and {{ date_column }} = date '{{ var("date") }}'
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}

{% macro up_to_partition(date_column='date', country_column='country') -%}
  {%- if var('date') is not none and var('country') is not none -%}
    {{ country_column }} = '{{ var("country") }}' and {{ date_column }} <= date '{{ var("date") }}'
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}

{#- pre-hook of incremental models: drop the partition first, so a re-run replaces it exactly. -#}
{% macro delete_partition(date_column='date') -%}
  {%- if is_incremental() -%}
    delete from {{ this }} where {{ in_partition(date_column) }}
  {%- endif -%}
{%- endmacro %}

{#- Models whose rows keep changing after their date (outcomes arrive later) rebuild a trailing window. -#}
{% macro in_lookback(days, date_column='date', country_column='country') -%}
  {%- if var('date') is not none and var('country') is not none -%}
    {{ country_column }} = '{{ var("country") }}'
    and {{ date_column }} between date '{{ var("date") }}' - {{ days }} and date '{{ var("date") }}'
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}

{% macro delete_lookback(days, date_column='date') -%}
  {%- if is_incremental() -%}
    delete from {{ this }} where {{ in_lookback(days, date_column) }}
  {%- endif -%}
{%- endmacro %}

{#- The latest local date with data for the partition's country: outcomes up to it are known. -#}
{% macro as_of_date() -%}
  {%- if var('date') is not none -%} date '{{ var("date") }}' {%- else -%} (select max(date) from {{ ref('stg_users') }}) {%- endif -%}
{%- endmacro %}

{% macro take_rate(country_column) -%}
  case {{ country_column }}
  {%- for code, rate in var('take_rate').items() %} when '{{ code }}' then {{ rate }}{% endfor %}
  end
{%- endmacro %}

{#- Join condition of a user's rows (alias) over the `days` days up to the `users` CTE's date, its own included. -#}
{% macro user_window(alias, days) -%}
  {{ alias }}.country = users.country and {{ alias }}.user_id = users.user_id
        and {{ alias }}.date between users.date - {{ days }} and users.date
{%- endmacro %}
