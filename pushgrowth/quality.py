"""Great Expectations gates: the suites in `expectations/`, validation of a DataFrame, failures as plain data.

Suites hold what is always true of a dataset (contract nulls, primary keys, accepted values, ranges). What depends
on the partition (its date and country, timestamp windows, the row count against the previous day) is built at
check time by `partition_expectations`. Validation runs in a per-process, in-memory GX context, so the gate's
answer never depends on disk state; Data Docs, when asked for, are written afterwards from a file-backed context
under the home folder (`<home>/gx`, site in `<home>/reports/data_docs`).

GX is imported on first use: importing it costs seconds, and Dagster loads this module with the definitions.
"""

from __future__ import annotations

import copy
import datetime as dt
import fcntl
import json
import math
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from pushgrowth.domain import COUNTRIES
from pushgrowth.home import Home
from pushgrowth.lake import partition_dir
from pushgrowth.landing.schema import TABLES, TS_LOCAL, TS_UTC

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd
    from great_expectations.expectations import Expectation

EXPECTATIONS_DIR = Path(__file__).resolve().parents[1] / "expectations"
LAKE_DATASETS: dict[str, str] = {**{f"raw_{t}": f"raw/{t}" for t in TABLES}, "user_features": "marts/user_features"}
"""Validated dataset (= suite name = asset name) -> its dataset in the lake."""

ROW_COUNT_FLOOR = {"raw_users": 0.9, "raw_sessions": 0.5}
"""Share of the previous day's rows a partition must keep; a users snapshot only grows, sessions vary by weekday."""

DOCS_SITE = "pushgrowth"
DOCS_INDEX_LIMIT = 500
"""Validation results listed on the Data Docs index page (newest first); older pages stay on disk."""


@dataclass(frozen=True)
class Failure:
    """One failed expectation, as a person reads it: what was expected, on which column, what was seen."""

    expectation: str
    column: str | None
    kwargs: dict[str, Any]
    observed: str
    unexpected_count: int | None = None
    observed_value: Any = None


@dataclass(frozen=True)
class QualityResult:
    dataset: str
    success: bool
    rows: int
    evaluated: int
    failures: tuple[Failure, ...] = ()
    data_docs: Path | None = None
    docs_error: str | None = None
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        if self.success:
            return f"{self.dataset}: all {self.evaluated} expectations passed on {self.rows} rows"
        failed = "; ".join(f"{f.expectation}({f.column or 'table'}): {f.observed}" for f in self.failures)
        return f"{self.dataset}: {len(self.failures)} of {self.evaluated} expectations failed on {self.rows} rows: {failed}"

    def markdown(self) -> str:
        """The failed expectations as a Markdown table (empty string when everything passed)."""
        if not self.failures:
            return ""
        lines = ["| expectation | column | observed |", "| --- | --- | --- |"]
        for f in self.failures:
            cells = (f.expectation, f.column or "(table)", f.observed)
            lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
        return "\n".join(lines)


def _gx():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations

    return great_expectations


def suite_path(name: str) -> Path:
    return EXPECTATIONS_DIR / f"{name}.json"


def load_suite(name: str) -> gx.ExpectationSuite:
    """The suite stored in `expectations/<name>.json` (GX 1.x ExpectationSuite JSON)."""
    path = suite_path(name)
    if not path.exists():
        known = sorted(p.stem for p in EXPECTATIONS_DIR.glob("*.json"))
        raise FileNotFoundError(f"{path}: no expectation suite named {name!r}; known suites: {known}")
    config = json.loads(path.read_text())
    config.pop("id", None)
    return _gx().ExpectationSuite(**config)


class _Memory:
    """The per-process, in-memory GX context with one dataframe asset per dataset; GX is not thread-safe."""

    lock = threading.Lock()
    context: Any = None
    source: Any = None

    @classmethod
    def batch_definition(cls, dataset: str):
        if cls.context is None:
            gx = _gx()
            from great_expectations.data_context.types.base import ProgressBarsConfig

            cls.context = gx.get_context(mode="ephemeral")
            cls.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            cls.source = cls.context.data_sources.add_pandas("pushgrowth")
        try:
            asset = cls.source.get_asset(dataset)
        except LookupError:
            asset = cls.source.add_dataframe_asset(dataset)
        try:
            return asset.get_batch_definition("whole")
        except KeyError:
            return asset.add_batch_definition_whole_dataframe("whole")


def validate(
    df: pd.DataFrame,
    suite_name: str,
    extra_expectations: Iterable[Expectation] = (),
    data_docs_dir: Path | None = None,
    *,
    gx_root: Path | None = None,
    run_name: str | None = None,
) -> QualityResult:
    """Run the suite `suite_name` plus `extra_expectations` on `df`.

    With `data_docs_dir`, the result is also stored in the file-backed GX project at `gx_root` (default: a `gx`
    folder next to `data_docs_dir`) and rendered as a Data Docs page; a failure to render is reported in
    `docs_error`, never as a failed gate.
    """
    gx = _gx()
    from great_expectations.core.run_identifier import RunIdentifier

    suite = load_suite(suite_name)
    for expectation in extra_expectations:
        suite.add_expectation(copy.copy(expectation))  # GX's copy drops the id
    run_id = RunIdentifier(run_name=run_name or suite_name, run_time=dt.datetime.now(dt.UTC))
    with _Memory.lock:
        batch_definition = _Memory.batch_definition(suite_name)
        context = _Memory.context
        suite = context.suites.add_or_update(suite)
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite))
        outcome = definition.run(batch_parameters={"dataframe": df}, run_id=run_id, result_format="SUMMARY")
    failures = tuple(_failure(r) for r in outcome.results if not r.success)
    docs, docs_error = None, None
    if data_docs_dir is not None:
        try:
            docs = publish(outcome, suite_name, Path(data_docs_dir), gx_root or Path(data_docs_dir).parent / "gx")
        except Exception as exc:  # noqa: BLE001 - the gate must not depend on rendering
            docs_error = f"{type(exc).__name__}: {exc}"
    return QualityResult(dataset=suite_name, success=bool(outcome.success), rows=len(df),
                         evaluated=len(outcome.results), failures=failures, data_docs=docs, docs_error=docs_error)


def _failure(result) -> Failure:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    column = kwargs.get("column") or ", ".join(kwargs.get("column_list") or []) or (
        f"{kwargs['column_A']}, {kwargs['column_B']}" if "column_A" in kwargs else None)
    info = result.exception_info or {}
    if info.get("raised_exception"):
        return Failure(config.type, column, kwargs, f"error: {info.get('exception_message')}")
    details = result.result or {}
    if "observed_value" in details:
        observed = details["observed_value"]
        text = _short(observed)
        if config.type == "expect_table_columns_to_match_set":
            mismatched = (details.get("details") or {}).get("mismatched") or {}
            text = f"unexpected {mismatched.get('unexpected', [])}, missing {mismatched.get('missing', [])}"
        return Failure(config.type, column, kwargs, f"{text} (expected {_expected(kwargs)})", observed_value=observed)
    count = details.get("unexpected_count")
    total = details.get("element_count")
    text = f"{count} of {total} rows"
    sample = [v.get("value") for v in details.get("partial_unexpected_counts") or []][:5]
    if sample and "null" not in config.type:
        text += f", e.g. {_short(sample)}"
    return Failure(config.type, column, kwargs, text, unexpected_count=count)


def _short(value: Any, limit: int = 120) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expected(kwargs: dict[str, Any]) -> str:
    keys = ("min_value", "max_value", "value", "value_set")
    parts = [f"{k}={kwargs[k]}" for k in keys if kwargs.get(k) is not None]
    return ", ".join(parts) or "see suite"


def publish(outcome, suite_name: str, data_docs_dir: Path, gx_root: Path) -> Path:
    """Store one validation result in the GX project at `gx_root` and render its Data Docs page; returns it."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    gx_root.mkdir(parents=True, exist_ok=True)
    with (gx_root / ".lock").open("w") as lock:  # other processes (other partitions) share the project
        fcntl.flock(lock, fcntl.LOCK_EX)
        context = _file_context(gx_root, data_docs_dir)
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
            run_id=outcome.meta["run_id"],
            batch_identifier=f"pushgrowth-{suite_name}",
        )
        context.validation_results_store.store_validation_results(outcome, key)
        context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=[key])
        (url,) = [u["site_url"] for u in context.get_docs_sites_urls(resource_identifier=key, site_name=DOCS_SITE)]
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(url).path))


_FILE_CONTEXTS: dict[tuple[Path, Path], Any] = {}


def _file_context(gx_root: Path, data_docs_dir: Path):
    """The file-backed GX project, with a single Data Docs site writing to `data_docs_dir`; cached per process."""
    cache_key = (gx_root.resolve(), data_docs_dir.resolve())
    if cache_key in _FILE_CONTEXTS:
        return _FILE_CONTEXTS[cache_key]
    context = _gx().get_context(mode="file", project_root_dir=str(cache_key[0]))
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(cache_key[1])},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder",
                               "validation_results_limit": DOCS_INDEX_LIMIT},
    }
    sites = context.list_data_docs_sites()
    for name in [n for n in sites if n != DOCS_SITE]:
        context.delete_data_docs_site(name)
    if DOCS_SITE not in sites:
        context.add_data_docs_site(DOCS_SITE, site)
    elif sites[DOCS_SITE] != site:
        context.update_data_docs_site(DOCS_SITE, site)
    _FILE_CONTEXTS[cache_key] = context
    return context


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
    import great_expectations.expectations as gxe

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
        expectations.append(gxe.ExpectColumnValuesToBeBetween(column="snapshot_date", min_value=date, max_value=date))
    if "currency" in names and country in COUNTRIES:
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=[COUNTRIES[country].currency]))
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


def check_partition(
    home: Home, dataset: str, country: str, date: dt.date, data_docs: bool = True
) -> QualityResult:
    """Validate one lake partition of `dataset` with its suite and its partition expectations."""
    path = partition_file(home.lake, dataset, country, date)
    if not path.exists():
        raise FileNotFoundError(f"{path}: partition {country}|{date} of {dataset} is not in the lake")
    df = to_frame(pq.read_table(path))
    previous = row_count(home.lake, dataset, country, date - dt.timedelta(days=1))
    users = row_count(home.lake, "raw_users", country, date) if dataset == "user_features" else None
    extra = partition_expectations(dataset, country, date, previous_rows=previous, users_rows=users)
    return validate(df, dataset, extra, home.reports / "data_docs" if data_docs else None,
                    gx_root=home.root / "gx", run_name=f"{country} {date.isoformat()}")
