"""The decisions contract: what daily assignments record for every (user, campaign) they consider.

Daily assignments write one Parquet partition per (country, date) to `lake/decisions`. The dbt model
`decision_log` joins these rows to the outcomes that arrive later; off-policy evaluation and training read only
the decision log. Every row carries the probability with which the logging policy drew the chosen action, so
a policy can be evaluated on data it did not collect.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from pushgrowth.lake import partition_dir, write_partition

DATASET = "decisions"

SCHEMA = pa.schema([
    pa.field("trace_id", pa.string(), nullable=False),
    pa.field("country", pa.string(), nullable=False),
    pa.field("date", pa.date32(), nullable=False),
    pa.field("user_id", pa.int64(), nullable=False),
    pa.field("campaign_id", pa.string(), nullable=False),
    pa.field("group", pa.string(), nullable=False),            # holdout | bau | bandit
    pa.field("objective", pa.string(), nullable=False),        # open | conversion | net_revenue
    pa.field("value_proposition", pa.string()),
    pa.field("coupon_kind", pa.string()),                      # none | amount | percent; null for holdout
    pa.field("coupon_value", pa.float64()),
    pa.field("template_id", pa.string()),
    pa.field("tone", pa.string()),
    pa.field("send_hour", pa.int32()),
    pa.field("send_weekday", pa.int32()),
    pa.field("frequency", pa.int32()),
    pa.field("propensity", pa.float64(), nullable=False),      # P(logging policy chose this action), in (0, 1]
    pa.field("policy", pa.string(), nullable=False),           # holdout | bau | cold_start | bandit
    pa.field("model_name", pa.string()),
    pa.field("model_version", pa.string()),
    pa.field("expected_reward", pa.float64()),
])

SENTINEL_COUNTRY = "__none__"
SENTINEL_DATE = dt.date(1970, 1, 1)


def ensure_dataset(lake: Path) -> None:
    """Give the decisions dataset an empty, schema-only partition so readers work before the first decision.

    DuckDB refuses a glob that matches no file; the sentinel partition holds no rows.
    """
    if not (partition_dir(lake, DATASET, SENTINEL_COUNTRY, SENTINEL_DATE) / "part-0.parquet").exists():
        write_partition(lake, DATASET, SENTINEL_COUNTRY, SENTINEL_DATE, SCHEMA.empty_table())
