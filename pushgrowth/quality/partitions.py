"""Checks of lake partitions: the expectations that depend on the partition; the check of a country-day."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from pushgrowth.domain import COUNTRIES
from pushgrowth.home import Home
from pushgrowth.lake import partition_dir
from pushgrowth.landing.schema import TABLES, TS_LOCAL, TS_UTC
from pushgrowth.quality.results import Failure, QualityResult
from pushgrowth.quality.validation import gx_module, publish, validate

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.expectations import Expectation

LAKE_DATASETS: dict[str, str] = {
    **{f"raw_{t}": f"raw/{t}" for t in TABLES},
    "user_features": "marts/user_features",
    "daily_assignments": "decisions",
}
"""Validated dataset (= suite name = asset name) -> its dataset in the lake."""

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


def partition_file(lake: Path, dataset: str, country: str, date: dt.date) -> Path:
    return partition_dir(lake, LAKE_DATASETS[dataset], country, date) / "part-0.parquet"


def row_count(lake: Path, dataset: str, country: str, date: dt.date) -> int | None:
    """Rows of a lake partition from the Parquet footer, None when the partition does not exist."""
    path = partition_file(lake, dataset, country, date)
    return pq.ParquetFile(path).metadata.num_rows if path.exists() else None


def to_frame(table: pa.Table) -> pd.DataFrame:
    """A lake partition as pandas; DuckDB's HUGEINT sums arrive as decimals and are validated as floats."""
    for i, column in enumerate(table.schema):
        if pa.types.is_decimal(column.type):
            table = table.set_column(i, column.name, table.column(i).cast(pa.float64()))
    return table.to_pandas()


def check_partitions(
    home: Home, datasets: Iterable[str], country: str, date: dt.date, data_docs: bool = True,
    docs_index: bool = False,
) -> list[QualityResult]:
    """Validate one (country, date) partition of each dataset in the lake with its suite and partition
    expectations; Data Docs go to `<home>/reports/data_docs` (GX project in `<home>/gx`), their index page only
    with `docs_index` or a failure (the day's assignment checks rebuild it, see `validation.publish`). A
    partition missing from the lake is a failed result, not an exception."""
    results = []
    for dataset in datasets:
        path = partition_file(home.lake, dataset, country, date)
        if not path.exists():
            missing = Failure("partition_exists", None, {}, "a materialized partition",
                              f"partition {country}|{date} not in the lake ({path})")
            results.append(QualityResult(dataset, success=False, rows=0, evaluated=0, failures=(missing,)))
            continue
        previous = row_count(home.lake, dataset, country, date - dt.timedelta(days=1))
        users = row_count(home.lake, "raw_users", country, date) if dataset == "user_features" else None
        extra = partition_expectations(dataset, country, date, previous_rows=previous, users_rows=users)
        results.append(validate(to_frame(pq.read_table(path)), dataset, extra, run_name=f"{country} {date}"))
    return publish(results, home.reports / "data_docs", home.root / "gx", index=docs_index) if data_docs else results


def check_partition(
    home: Home, dataset: str, country: str, date: dt.date, data_docs: bool = True, docs_index: bool = False
) -> QualityResult:
    (result,) = check_partitions(home, [dataset], country, date, data_docs, docs_index)
    return result
