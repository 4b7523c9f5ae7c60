"""Every dataset of the lake, named once: its path, its partitioning, and the asset that owns it.

The lake is `<home>/lake`. A partitioned dataset is `<path>/country=<C>/date=<YYYY-MM-DD>/part-0.parquet`;
a file dataset is one file, `<path>`. Nothing outside `pushgrowth.storage` spells a lake path: assets, the CLI
and the simulation driver name a `Dataset` from here, and domain modules receive and return dataframes.

`asset` is the asset key readers depend on. It is the writer, except for the decisions log: daily_assignments
writes tomorrow's decisions, and the next days read them back through the external asset `decisions` (the
asset graph cannot hold the loop in time that runs through dbt). `writer_offset` is how many days after its
writer's partition a written partition is dated: daily_assignments of day D writes the decisions of D + 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pushgrowth.landing.contract import TABLES

Partitioning = Literal["country_date", "file"]


@dataclass(frozen=True)
class Dataset:
    """One dataset of the lake."""

    name: str
    path: str
    asset: str
    description: str
    partitioning: Partitioning = "country_date"
    writer: str | None = None
    writer_offset: int = 0

    @property
    def written_by(self) -> str:
        """The asset (or, for `simulation`, the simulation driver) that writes this dataset."""
        return self.writer or self.asset

    @property
    def partitioned(self) -> bool:
        return self.partitioning == "country_date"


def _raw(table: str) -> Dataset:
    return Dataset(f"raw_{table}", f"raw/{table}", f"raw_{table}",
                   f"The `{table}` extract of a country-day, as delivered (checked against its contract).")


def _mart(model: str) -> Dataset:
    return Dataset(model, f"marts/{model}", model, f"The dbt mart `{model}`, exported one partition at a time.")


RAW: dict[str, Dataset] = {t: _raw(t) for t in TABLES}
"""Raw extracts by table name (`users`, `sessions`, ...)."""

USER_FEATURES = _mart("user_features")
LIFECYCLE_SEGMENTS = _mart("lifecycle_segments")
AUDIENCES = _mart("audiences")
DECISION_LOG = _mart("decision_log")
CAMPAIGN_DAILY_PERFORMANCE = _mart("campaign_daily_performance")
MARTS: dict[str, Dataset] = {d.name: d for d in (USER_FEATURES, LIFECYCLE_SEGMENTS, AUDIENCES, DECISION_LOG,
                                                 CAMPAIGN_DAILY_PERFORMANCE)}
"""The dbt marts that Python assets read, exported from the warehouse to the lake after each build."""

DECISIONS = Dataset("decisions", "decisions", "decisions", writer="daily_assignments", writer_offset=1,
                    description="Every decision of daily assignments, with its exact propensity and the settings "
                                "of the policy that served it; read back by dbt and the next days' assignments.")
PACING = Dataset("pacing", "pacing", "daily_assignments", writer_offset=1,
                 description="Per campaign and group, the budget pacing of a decision day: target, price, spend.")
OUTBOX = Dataset("outbox", "outbox", "push_outbox", writer_offset=1,
                 description="The delivery-ready pushes of a decision day, as handed to the delivery system.")
BUDGET_LEDGER = Dataset("budget_ledger", "budget_ledger", "budget_ledger",
                        description="Per campaign, group and month: the budget pacing enforces, spend committed, "
                                    "coupons in flight, pace. The one budget source.")
ORACLE = Dataset("oracle", "oracle", "oracle", writer="simulation",
                 description="Simulation only: the World's value of every decision and of the best plan.")
CATALOG = Dataset("catalog", "catalog/catalog.json", "campaign_catalog", partitioning="file",
                  description="The last valid campaign catalog, as published (what assignments serve).")
CATALOG_VERSION = Dataset("catalog_version", "catalog/VERSION.json", "campaign_catalog", partitioning="file",
                          description="The published catalog's version and rows per table (written last).")
CATALOG_TABLES: dict[str, Dataset] = {
    name: Dataset(f"catalog_{name}", f"catalog/{name}.parquet", f"catalog/{name}", partitioning="file",
                  writer="campaign_catalog", description=f"The `{name}` table of the published catalog (dbt source).")
    for name in ("campaigns", "campaign_segments", "campaign_audience", "campaign_actions", "campaign_templates",
                 "country_policies")
}

DATASETS: dict[str, Dataset] = {d.name: d for d in (
    *RAW.values(), *MARTS.values(), DECISIONS, PACING, OUTBOX, BUDGET_LEDGER, ORACLE, CATALOG, CATALOG_VERSION,
    *CATALOG_TABLES.values())}
"""Every dataset by name."""


def dataset(name: str) -> Dataset:
    """The dataset called `name` (a KeyError naming the known ones otherwise)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"no dataset {name!r} in the storage registry; known: {', '.join(sorted(DATASETS))}") from None


def by_asset(asset: str) -> Dataset:
    """The partitioned dataset whose readers depend on `asset` (raw_users, user_features, ...)."""
    for d in DATASETS.values():
        if d.asset == asset and d.partitioned and d.writer_offset == 0:
            return d
    raise KeyError(f"no partitioned dataset owned by asset {asset!r}")


def dbt_location(source: str) -> str:
    """The `external_location` a dbt source of the lake must have (see `dbt_project/models/staging`)."""
    home = "{{ env_var('PUSHGROWTH_HOME', '../.pushgrowth') }}"
    if source == "catalog":
        return f"read_parquet('{home}/lake/catalog/{{name}}.parquet')"
    prefix = {"raw": "raw/", "pushgrowth": ""}[source]
    return f"read_parquet('{home}/lake/{prefix}{{name}}/*/*/*.parquet', hive_partitioning = true, union_by_name = true)"


__all__ = ["AUDIENCES", "BUDGET_LEDGER", "CAMPAIGN_DAILY_PERFORMANCE", "CATALOG", "CATALOG_TABLES", "CATALOG_VERSION",
           "DATASETS", "DECISIONS", "DECISION_LOG", "LIFECYCLE_SEGMENTS", "MARTS", "ORACLE", "OUTBOX", "PACING", "RAW",
           "USER_FEATURES", "Dataset", "by_asset", "dataset", "dbt_location"]
