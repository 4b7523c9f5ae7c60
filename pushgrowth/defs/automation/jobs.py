"""The daily refresh: everything downstream of the raw extracts for one (date, country) partition."""

import dagster as dg

from pushgrowth.defs.partitions import country_day_partitions
from pushgrowth.landing.schema import TABLES

RAW_KEYS = [dg.AssetKey(f"raw_{t}") for t in TABLES]

daily_refresh_job = dg.define_asset_job(
    "daily_refresh_job",
    selection=dg.AssetSelection.assets(*RAW_KEYS).downstream() - dg.AssetSelection.assets(*RAW_KEYS),
    partitions_def=country_day_partitions,
    description="dbt models and everything after them for one country-day, once its raw extracts are loaded.",
)
