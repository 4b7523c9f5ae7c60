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
    keys = context.partition_key.keys_by_dimension
    return keys["country"], dt.date.fromisoformat(keys["date"])
