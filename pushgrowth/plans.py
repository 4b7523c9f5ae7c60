"""From decisions to pushes: deterministic trace ids and the expansion of weekly plans into outbox rows.

A trace id is a pure function of (date, country, campaign, user), so a re-run of a partition reproduces the
same ids, and an idempotency key adds the push's position in the plan: the delivery system (or the World) can
then refuse any push it has already received.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from pushgrowth.domain import FREQUENCIES, plan_send_offsets


def trace_id(date: dt.date, country: str, campaign_id: str, user_id: int) -> str:
    digest = hashlib.blake2b(f"{date.isoformat()}|{country}|{campaign_id}|{user_id}".encode(), digest_size=10)
    return f"pg-{digest.hexdigest()}"


def trace_ids(date: dt.date, country: str, campaign_ids: pd.Series, user_ids: pd.Series) -> list[str]:
    return [trace_id(date, country, c, int(u)) for c, u in zip(campaign_ids, user_ids, strict=True)]


def expand_plans(plans: pd.DataFrame, date: dt.date) -> pd.DataFrame:
    """One row per push: each plan row repeated for its sends, with `send_date`, `send_index`, `idempotency_key`.

    `plans` needs `trace_id`, `send_weekday` (0 = Monday) and `frequency`; other columns are carried along.
    """
    missing = [c for c in ("trace_id", "send_weekday", "frequency") if c not in plans.columns]
    if missing:
        raise ValueError(f"plans: missing columns {missing}")
    bad = ~plans["frequency"].isin(FREQUENCIES)
    if bad.any():
        raise ValueError(f"plans: frequency must be one of {FREQUENCIES}; row {int(np.flatnonzero(bad)[0])} "
                         f"has {plans['frequency'][bad].iloc[0]}")
    offsets = {(wd, f): plan_send_offsets(date, wd, f) for wd in range(7) for f in FREQUENCIES}
    plan_offsets = [offsets[(int(w), int(f))] for w, f in zip(plans["send_weekday"], plans["frequency"], strict=True)]
    counts = np.array([len(o) for o in plan_offsets])
    out = plans.loc[plans.index.repeat(counts)].reset_index(drop=True)
    flat = np.concatenate([np.asarray(o) for o in plan_offsets]) if len(plan_offsets) else np.zeros(0, int)
    out["send_index"] = np.concatenate([np.arange(c) for c in counts]) if len(counts) else np.zeros(0, int)
    out["send_date"] = pd.to_datetime(date) + pd.to_timedelta(flat, unit="D")
    out["idempotency_key"] = out["trace_id"] + "-" + out["send_index"].astype(str)
    return out
