"""The training frame of the reward model, from frames the caller read.

Training and off-policy evaluation use only the decision log (the dbt mart `decision_log`), joined to the
context the policy saw: the `user_features` of the day before each decision.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

LABELS = {"open": "reward_open", "conversion": "reward_conversion", "net_revenue": "reward_net_revenue"}
"""The reward column of each objective in the decision log."""


def context_dates(log: pd.DataFrame) -> list[dt.date]:
    """The user_features days a decision log needs: the day before each decision."""
    if not len(log):
        return []
    return sorted(set(pd.to_datetime(log["date"]).dt.date - dt.timedelta(days=1)))


def with_context(log: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Decision rows joined to the user_features of the day before each decision (rows without one are dropped);
    `features` holds (at least) the `context_dates(log)` partitions."""
    if not len(log):
        return log
    log = log.assign(context_date=pd.to_datetime(log["date"]).dt.date - dt.timedelta(days=1))
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


def training_frame(log: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Treated decisions of `log` (the decision log of the training window) with their context (`features`, see
    `with_context`) and labels; a label is NaN until it is known.

    `reward_open` is known as soon as one of the plan's pushes is delivered: opens come within hours of a push,
    so the pushes delivered so far give an unbiased open rate (slightly weighted to a plan's first pushes).
    Conversion, net revenue and redemption need the plan's week and attribution window to be over (`is_mature`).
    """
    if not len(log):
        return log
    log = log[treated(log)].reset_index(drop=True)
    frame = with_context(log, features)
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


def treated(log: pd.DataFrame) -> pd.Series:
    """The decisions that sent a plan: not holdout, with a frequency."""
    return (log["assignment_group"] != "holdout") & log["frequency"].notna()


__all__ = ["LABELS", "check_window", "context_dates", "reward_kind", "reward_of", "training_frame", "treated",
           "window_start", "with_context"]
