"""The decisions contract: what daily assignments record for every (user, campaign) they consider.

Daily assignments write one Parquet partition per (country, date) of the `decisions` dataset. The dbt model
`decision_log` joins these rows to the outcomes that arrive later; off-policy evaluation and training read only
the decision log. Every row carries the probability with which the logging policy drew the chosen action, so
a policy can be evaluated on data it did not collect.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa

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
    pa.field("coupon_cap", pa.float64()),                      # cap of a percent coupon (0 if none)
    pa.field("template_id", pa.string()),
    pa.field("tone", pa.string()),
    pa.field("send_hour", pa.int32()),
    pa.field("send_weekday", pa.int32()),
    pa.field("frequency", pa.int32()),
    pa.field("propensity", pa.float64(), nullable=False),      # P(logging policy chose this action), in (0, 1]
    pa.field("policy", pa.string(), nullable=False),  # holdout | bau | cold_start | bandit | budget_exhausted
    pa.field("model_name", pa.string()),
    pa.field("model_version", pa.string()),
    pa.field("expected_reward", pa.float64()),                 # the serving head's prediction for the plan
    pa.field("expected_cost", pa.float64()),                   # P(redeemed) x discount x cost share
    pa.field("cost_price", pa.float64()),                      # pacing's price on coupon cost (bandit)
    pa.field("coupons_allowed", pa.bool_()),                   # false when pacing left only coupon-free plans
    pa.field("free_days", pa.int32()),                         # bit k: day date+k had no push scheduled
    pa.field("capacity", pa.int32()),                          # pushes the user could still take that week
    pa.field("window_room", pa.string()),                      # room in each 7-day window around the plan
    pa.field("campaign_value", pa.float64()),                  # why this campaign: its value for the user
    pa.field("campaign_pick", pa.string()),                    # expected_margin | random
    pa.field("candidates", pa.int32()),                        # campaigns the user was eligible for that day
    pa.field("share_bandit", pa.float64()),                    # the campaign's bandit share that day (rollout)
    pa.field("catalog_version", pa.string()),
])
"""Everything a decision needs to be explained and to be re-evaluated under another policy: the masks
(`free_days`, `capacity`, `window_room`, `coupons_allowed`) and the price let off-policy evaluation recompute what a candidate
policy would have done in exactly the same situation."""

SENTINEL_COUNTRY = "__none__"
ACTION_FIELDS = ("coupon_kind", "coupon_value", "coupon_cap", "template_id", "tone", "send_hour", "send_weekday",
                 "frequency")
SENTINEL_DATE = dt.date(1970, 1, 1)


def to_table(frame) -> pa.Table:
    """The decisions of a partition as an Arrow table with exactly the contract's schema (a clear error if not)."""
    missing = [f.name for f in SCHEMA if f.name not in frame.columns]
    if missing:
        raise ValueError(f"decisions: missing columns {missing}")
    frame = frame[[f.name for f in SCHEMA]].copy()
    for name in ("send_hour", "send_weekday", "frequency", "free_days", "capacity", "candidates"):
        frame[name] = frame[name].astype("Int32")
    for f in SCHEMA:
        if not f.nullable and frame[f.name].isna().any():
            row = int(frame[f.name].isna().to_numpy().nonzero()[0][0])
            raise ValueError(f"decisions: column {f.name} is null in row {row} (trace {frame['trace_id'].iloc[row]})")
    return pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False)


CORRECTION_KEY = "pushgrowth.correction"
"""The Parquet metadata key of a decisions partition rewritten on purpose after its day was delivered."""


@dataclass(frozen=True)
class Changes:
    """How a recomputed day of decisions differs from the one logged (see `changes`)."""

    logged: int
    recomputed: int
    changed: int
    added: int
    removed: int
    example: str

    def __bool__(self) -> bool:
        return bool(self.changed or self.added or self.removed)

    def summary(self) -> str:
        return (f"{self.changed} of {self.logged} logged decisions would change, {self.added} be added and "
                f"{self.removed} removed (first: {self.example})")


def changes(logged: pa.Table, recomputed: pa.Table) -> Changes:
    """Compare two decisions partitions row by row, by trace id (an empty result: identical)."""
    old = logged.select([f.name for f in SCHEMA]).to_pandas().set_index("trace_id").sort_index()
    new = recomputed.select([f.name for f in SCHEMA]).to_pandas().set_index("trace_id").sort_index()
    both = old.index.intersection(new.index)
    a, b = (f.loc[both].astype(str).fillna("<null>") for f in (old, new))  # exact: equal values print alike
    differs = (a != b).any(axis=1)
    example = "-"
    if differs.any():
        trace = differs[differs].index[0]
        columns = [c for c in a.columns if a.at[trace, c] != b.at[trace, c]]
        example = f"trace {trace}: " + ", ".join(f"{c} {a.at[trace, c]} -> {b.at[trace, c]}" for c in columns[:3])
    elif len(new.index.difference(old.index)) or len(old.index.difference(new.index)):
        extra = list(new.index.difference(old.index)[:1]) or list(old.index.difference(new.index)[:1])
        example = f"trace {extra[0]} only in one of them"
    return Changes(len(old), len(new), int(differs.sum()), len(new.index.difference(old.index)),
                   len(old.index.difference(new.index)), example)
