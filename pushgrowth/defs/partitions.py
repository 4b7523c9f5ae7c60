"""Partitions: local days x countries. Countries come from the campaign catalog (the sites it runs in)."""


import datetime as dt
import os

import dagster as dg

from pushgrowth.catalog_path import catalog_countries

START_DATE = os.environ.get("PUSHGROWTH_START_DATE", "2026-09-01")
"""First partition date; the simulated World starts on it by default."""

COUNTRIES = catalog_countries()

daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, end_offset=1)
country_partitions = dg.StaticPartitionsDefinition(list(COUNTRIES))
country_day_partitions = dg.MultiPartitionsDefinition({"date": daily_partitions, "country": country_partitions})


def partition_key(country: str, date: dt.date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"country": country, "date": date.isoformat()})


def country_and_date(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> tuple[str, dt.date]:
    """The (country, date) of a run's partition, however it was launched: the UI sends a tag per dimension
    (`dagster/partition/country`, `.../date`), the GraphQL client, the Python API and `dagster asset materialize
    --partition` only `dagster/partition` ("MLA|2026-09-01"), which reaches the step as a plain string."""
    key = context.partition_key
    if not isinstance(key, dg.MultiPartitionKey):
        if not country_day_partitions.has_partition_key(str(key)):
            raise ValueError(f"partition {key!r} is not a country-day of {country_day_partitions}: expected "
                             f"'<COUNTRY>|<YYYY-MM-DD>' with a country of {list(COUNTRIES)}")
        key = country_day_partitions.get_partition_key_from_str(str(key))
    keys = key.keys_by_dimension
    return keys["country"], dt.date.fromisoformat(keys["date"])
