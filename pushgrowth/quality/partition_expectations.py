"""Checks of one partition's frame: the expectations that depend on the partition (its date, country, time
windows and the previous day's row count) on top of the dataset's suite. The caller reads the frames."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from pushgrowth.domain import COUNTRIES
from pushgrowth.landing.contract import TABLES, TS_LOCAL, TS_UTC
from pushgrowth.quality.results import Failure, QualityResult
from pushgrowth.quality.validation import gx_module, validate

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.expectations import Expectation

SUITES: tuple[str, ...] = (*(f"raw_{t}" for t in TABLES), "user_features", "daily_assignments")
"""Validated datasets, named as their suite (`expectations/<name>.json`) and the asset they check."""

ROW_COUNT_FLOOR = {"raw_users": 0.9, "raw_sessions": 0.5}
"""Share of the previous day's rows a partition must keep: a users snapshot only grows; sessions vary by day."""


def partition_expectations(
    dataset: str,
    country: str,
    date: dt.date,
    previous_rows: int | None = None,
    users_rows: int | None = None,
) -> list[Expectation]:
    """What one (country, date) partition of `dataset` must satisfy beyond its suite.

    `previous_rows` is the row count of the previous day's partition (None: no previous day, no collapse check);
    `users_rows` is the row count of the same day's raw users (user_features has one row per user).
    """
    gxe = gx_module().expectations

    expectations: list[Expectation] = []
    floor = ROW_COUNT_FLOOR.get(dataset)
    if floor is not None and previous_rows is not None:
        expectations.append(gxe.ExpectTableRowCountToBeBetween(
            min_value=math.ceil(floor * previous_rows),
            notes=f"Row count collapse: at least {floor:.0%} of the previous day's {previous_rows} rows."))
    if dataset == "user_features":
        expectations += [gxe.ExpectColumnValuesToBeInSet(column="country", value_set=[country]),
                         gxe.ExpectColumnValuesToBeBetween(column="date", min_value=date, max_value=date)]
        if users_rows is not None:
            expectations.append(gxe.ExpectTableRowCountToEqual(
                value=users_rows, notes="One row per user of the day's raw users snapshot."))
        return expectations
    table = TABLES[dataset.removeprefix("raw_")]
    day = dt.datetime.combine(date, dt.time())
    for column in table.columns:
        if column.type == TS_LOCAL:  # the local day itself: the hour of a local timestamp is then 0..23
            expectations.append(gxe.ExpectColumnValuesToBeBetween(
                column=column.name, min_value=day, max_value=day + dt.timedelta(days=1), strict_max=True))
        elif column.type == TS_UTC:  # the local day in any time zone (UTC-12 .. UTC+14)
            start = day.replace(tzinfo=dt.UTC) - dt.timedelta(days=1)
            expectations.append(gxe.ExpectColumnValuesToBeBetween(
                column=column.name, min_value=start, max_value=start + dt.timedelta(days=3), strict_max=True))
    names = {c.name for c in table.columns}
    if "country" in names:
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column="country", value_set=[country]))
    if "snapshot_date" in names:
        expectations.append(
            gxe.ExpectColumnValuesToBeBetween(column="snapshot_date", min_value=date, max_value=date))
    if "currency" in names and country in COUNTRIES:
        expectations.append(
            gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=[COUNTRIES[country].currency]))
    return expectations


def to_frame(table: pa.Table) -> pd.DataFrame:
    """A lake partition as pandas; DuckDB's HUGEINT sums arrive as decimals and are validated as floats."""
    for i, column in enumerate(table.schema):
        if pa.types.is_decimal(column.type):
            table = table.set_column(i, column.name, table.column(i).cast(pa.float64()))
    return table.to_pandas()


def missing_partition(dataset: str, country: str, date: dt.date, path: Path) -> QualityResult:
    """The failed result of a partition that is not in the lake (not an exception: the check fails)."""
    missing = Failure("partition_exists", None, {}, "a materialized partition",
                      f"partition {country}|{date} not in the lake ({path})")
    return QualityResult(dataset, success=False, rows=0, evaluated=0, failures=(missing,))


def check_frame(frame: pd.DataFrame, dataset: str, country: str, date: dt.date, previous_rows: int | None = None,
                users_rows: int | None = None) -> QualityResult:
    """Validate one (country, date) partition of `dataset` with its suite and its partition expectations (see
    `partition_expectations` for `previous_rows` and `users_rows`); no Data Docs (see `validation.publish`)."""
    extra = partition_expectations(dataset, country, date, previous_rows=previous_rows, users_rows=users_rows)
    return validate(frame, dataset, extra, run_name=f"{country} {date}")
