"""Reading a country's datasets from the lake, and the training frame of the reward model.

Training and off-policy evaluation read only the decision log (exported by dbt to `lake/marts/decision_log`),
joined to the context the policy saw: the `user_features` of the day before each decision.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DECISION_LOG = "marts/decision_log"
USER_FEATURES = "marts/user_features"
LABELS = {"open": "reward_open", "conversion": "reward_conversion", "net_revenue": "reward_net_revenue"}
"""The reward column of each objective in the decision log."""


def partition_dates(lake: Path, dataset: str, country: str) -> list[dt.date]:
    folder = Path(lake) / dataset / f"country={country}"
    if not folder.exists():
        return []
    return sorted(dt.date.fromisoformat(p.name.removeprefix("date=")) for p in folder.glob("date=*")
                  if (p / "part-0.parquet").exists())


def _floats(table: pa.Table) -> pa.Table:
    """DuckDB's HUGEINT sums arrive as decimals: numbers for models and JSON (MLflow's input example)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.float64()))
    return table


def read_dataset(lake: Path, dataset: str, country: str, start: dt.date | None = None, end: dt.date | None = None,
                 dates: list[dt.date] | None = None) -> pd.DataFrame:
    """Every partition of a country's dataset in [start, end] (or the given dates), as one frame."""
    wanted = set(dates) if dates is not None else None
    frames = []
    for day in partition_dates(lake, dataset, country):
        if (start and day < start) or (end and day > end) or (wanted is not None and day not in wanted):
            continue
        path = Path(lake) / dataset / f"country={country}" / f"date={day.isoformat()}" / "part-0.parquet"
        table = pq.read_table(path)
        if table.num_rows:
            frames.append(_floats(table).to_pandas())
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def with_context(log: pd.DataFrame, lake: Path, country: str) -> pd.DataFrame:
    """Decision rows joined to the user_features of the day before each decision (rows without one are dropped)."""
    if not len(log):
        return log
    log = log.assign(context_date=pd.to_datetime(log["date"]).dt.date - dt.timedelta(days=1))
    features = read_dataset(lake, USER_FEATURES, country, dates=sorted(set(log["context_date"])))
    if not len(features):
        return log.iloc[:0]
    features = features.rename(columns={"date": "context_date"}).drop(columns=["country"], errors="ignore")
    return log.merge(features, on=["context_date", "user_id"], how="inner", suffixes=("", "_context"))


def reward_kind(frame: pd.DataFrame) -> np.ndarray:
    """Per decision, which reward is known: the campaign objective's once mature, else the open rate (its first
    step, known as soon as a push is delivered), else none ("")."""
    mature = frame["is_mature"].astype(bool).to_numpy()
    delivered = frame["pushes_delivered"].astype(float).to_numpy() > 0
    objective = frame["objective"].astype(str).to_numpy()
    return np.where(mature & ((objective != "open") | delivered), objective, np.where(delivered, "open", ""))


def reward_of(frame: pd.DataFrame, kind: np.ndarray) -> np.ndarray:
    """The reward column named by `kind`, row by row (NaN where none is known)."""
    out = np.full(len(frame), np.nan)
    for objective, column in LABELS.items():
        sel = kind == objective
        out[sel] = frame.loc[sel, column].astype(float).to_numpy()
    return out


def check_window(window_days: int | None, name: str = "window_days") -> None:
    """ValueError naming `name` unless the window is None or a whole number of days >= 1."""
    if window_days is not None and (isinstance(window_days, bool) or not isinstance(window_days, int)
                                    or window_days < 1):
        raise ValueError(f"{name} must be a whole number of days >= 1 (or None), got {window_days!r}")


def window_start(as_of: dt.date, window_days: int | None) -> dt.date | None:
    """The first decision date of a window of `window_days` days ending on `as_of` (None: no window)."""
    check_window(window_days)
    return None if window_days is None else as_of - dt.timedelta(days=window_days - 1)


def training_frame(lake: Path, country: str, as_of: dt.date, window_days: int | None = None) -> pd.DataFrame:
    """Treated decisions up to `as_of` (of its last `window_days` days, if given) with their context and labels;
    a label is NaN until it is known.

    `reward_open` is known as soon as one of the plan's pushes is delivered: opens come within hours of a push,
    so the pushes delivered so far give an unbiased open rate (slightly weighted to a plan's first pushes).
    Conversion, net revenue and redemption need the plan's week and attribution window to be over (`is_mature`).
    """
    log = read_dataset(lake, DECISION_LOG, country, start=window_start(as_of, window_days), end=as_of)
    if not len(log):
        return log
    log = log[(log["assignment_group"] != "holdout") & log["frequency"].notna()].reset_index(drop=True)
    frame = with_context(log, lake, country)
    if not len(frame):
        return frame
    mature = frame["is_mature"].astype(bool).to_numpy()
    delivered = frame["pushes_delivered"].astype(float).to_numpy() > 0
    frame["reward_open"] = np.where(delivered, frame["reward_open"].astype(float), np.nan)
    for column in ("reward_conversion", "reward_net_revenue"):
        frame[column] = np.where(mature, frame[column].astype(float), np.nan)
    frame["redeemed"] = np.where(mature, (frame["redemptions"] > 0).astype(float), np.nan)
    frame["pushes_delivered"] = frame["pushes_delivered"].astype(float)
    return frame


__all__ = ["DECISION_LOG", "LABELS", "USER_FEATURES", "check_window", "reward_kind", "reward_of", "partition_dates",
           "read_dataset", "training_frame", "window_start", "with_context"]
