"""The daily refresh: everything after the raw extracts for one (date, country) partition."""

import dagster as dg

from pushgrowth.defs.partitions import country_day_partitions

DAILY_GROUPS = ("staging", "intermediate", "marts")
"""Asset groups refreshed for a country-day after its raw extracts land, in dependency order."""

daily_refresh_job = dg.define_asset_job(
    "daily_refresh_job",
    selection=dg.AssetSelection.groups(*DAILY_GROUPS) | dg.AssetSelection.assets("budget_ledger"),
    partitions_def=country_day_partitions,
    description="dbt models and everything after them for one country-day, once its raw extracts are loaded.",
)
