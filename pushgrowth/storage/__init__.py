"""The storage layer: every lake dataset named once (`registry`), read and written only here (`lake`,
`catalog`), every read noted for the lineage an asset reports (`lineage`)."""

from pushgrowth.storage import lake, lineage
from pushgrowth.storage.datasets import (
    AUDIENCES,
    BUDGET_LEDGER,
    CATALOG,
    CATALOG_TABLES,
    DATASETS,
    DECISION_LOG,
    DECISIONS,
    MARTS,
    ORACLE,
    OUTBOX,
    PACING,
    RAW,
    USER_FEATURES,
    Dataset,
    by_asset,
    dataset,
)

__all__ = ["AUDIENCES", "BUDGET_LEDGER", "CATALOG", "CATALOG_TABLES", "DATASETS", "DECISIONS", "DECISION_LOG", "MARTS",
           "ORACLE", "OUTBOX", "PACING", "RAW", "USER_FEATURES", "Dataset", "by_asset", "dataset", "lake", "lineage"]
