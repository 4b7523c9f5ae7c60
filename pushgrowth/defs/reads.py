"""The frames each asset reads from the lake, through the storage layer (so every read is in its lineage).

Domain modules never read the lake: these readers hand them dataframes. Each names the datasets of
`pushgrowth.storage.datasets` it reads; the asset that calls it declares those datasets' assets as deps.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from pushgrowth.allocation.assign import PLAN_COLUMNS
from pushgrowth.allocation.inputs import previous_window
from pushgrowth.bandit.data import context_dates, window_start
from pushgrowth.campaigns.budget import DECISION_COLUMNS, empty_redemptions
from pushgrowth.domain import COUPON_VALIDITY_DAYS, PLAN_DAYS
from pushgrowth.storage import lake as store
from pushgrowth.storage.datasets import (
    AUDIENCES,
    BUDGET_LEDGER,
    DECISION_LOG,
    DECISIONS,
    ORACLE,
    OUTBOX,
    RAW,
    USER_FEATURES,
    Dataset,
)


def require(lake: Path, dataset: Dataset, country: str, date: dt.date) -> pd.DataFrame:
    """One partition as pandas, or a FileNotFoundError that says which run produces it."""
    if not store.exists(lake, dataset, country, date):
        raise FileNotFoundError(f"{store.partition_path(lake, dataset, country, date)}: {dataset.name} of {country} "
                                f"{date} is not in the lake; run the daily refresh for that partition first")
    return store.read_frame(lake, dataset, country, date)


def training_data(lake: Path, country: str, as_of: dt.date, window_days: int | None
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The decision log of the training window ending on `as_of` and the user_features it needs."""
    log = store.read_range(lake, DECISION_LOG, country, start=window_start(as_of, window_days), end=as_of)
    features = store.read_range(lake, USER_FEATURES, country, days=context_dates(log)) if len(log) else pd.DataFrame()
    return log, features


def latest_features_date(lake: Path, country: str) -> dt.date | None:
    dates = store.dates(lake, USER_FEATURES, country)
    return dates[-1] if dates else None


def previous_decisions(lake: Path, country: str, date: dt.date) -> pd.DataFrame:
    """The plans of the decisions whose pushes fall in the 7-day windows around decision day `date`."""
    start, end = previous_window(date)
    return store.read_range(lake, DECISIONS, country, columns=PLAN_COLUMNS, start=start, end=end)


def earlier_outboxes(lake: Path, country: str, date: dt.date) -> pd.DataFrame:
    """The pushes (user, campaign, send date) of the outboxes whose sends fall in the 7-day windows around the
    outbox of decision day `date`."""
    start, end = previous_window(date)
    return store.read_range(lake, OUTBOX, country, columns=["user_id", "campaign_id", "send_date"],
                            start=start, end=end)


def assignment_frames(lake: Path, country: str, data_date: dt.date) -> dict[str, pd.DataFrame]:
    """What daily_assignments of `data_date` decides from (see `allocation.inputs.day_inputs`)."""
    date = data_date + dt.timedelta(days=1)
    return {"audiences": require(lake, AUDIENCES, country, data_date),
            "context": require(lake, USER_FEATURES, country, data_date),
            "previous": previous_decisions(lake, country, date),
            "ledger": require(lake, BUDGET_LEDGER, country, data_date)}


def ledger_frames(lake: Path, country: str, as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The redemptions and decisions the budget ledger of `as_of` needs: redemptions of its month (from the day
    before, for time zones behind the reference) and of the coupons still in flight; the decisions that could
    have sent them (plan week and coupon validity before)."""
    first = min(as_of.replace(day=1) - dt.timedelta(days=1), as_of - dt.timedelta(days=COUPON_VALIDITY_DAYS))
    redemptions = store.read_range(lake, RAW["coupon_redemptions"], country, start=first, end=as_of)
    if not len(redemptions.columns):  # no extract in the window at all
        redemptions = empty_redemptions()
    decisions = store.read_range(lake, DECISIONS, country, columns=list(DECISION_COLUMNS),
                                 start=first - dt.timedelta(days=PLAN_DAYS + COUPON_VALIDITY_DAYS), end=as_of)
    return redemptions, decisions


def decision_log(lake: Path, country: str, as_of: dt.date | None = None) -> pd.DataFrame:
    return store.read_range(lake, DECISION_LOG, country, end=as_of)


def oracle(lake: Path, country: str, as_of: dt.date | None = None) -> pd.DataFrame:
    return store.read_range(lake, ORACLE, country, end=as_of)
