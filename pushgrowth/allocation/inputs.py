"""What daily assignments read from the lake: audiences, context, plans in flight and the budget state.

All inputs are Parquet partitions written by earlier assets (dbt exports its marts; assignments write the
decisions), so assignments never open the warehouse while dbt may be writing it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from pushgrowth.allocation.assign import DayInputs, scheduled_pushes
from pushgrowth.allocation.pacing import BudgetState, group_budgets
from pushgrowth.bandit.data import read_dataset
from pushgrowth.bandit.serving import ServingPolicy
from pushgrowth.campaigns import Catalog
from pushgrowth.decisions import DATASET as DECISIONS
from pushgrowth.domain import COUPON_VALIDITY_DAYS, PLAN_DAYS
from pushgrowth.lake import partition_dir, read_partition


def _require(lake: Path, dataset: str, country: str, date: dt.date) -> pd.DataFrame:
    if not (partition_dir(lake, dataset, country, date) / "part-0.parquet").exists():
        raise FileNotFoundError(f"{partition_dir(lake, dataset, country, date)}: {dataset} of {country} {date} is "
                                f"not in the lake; run the daily refresh for that partition first")
    return read_partition(lake, dataset, country, date).to_pandas()


def budget_states(lake: Path, country: str, date: dt.date, catalog: Catalog, scale: float
                  ) -> dict[tuple[str, str], BudgetState]:
    """Per (campaign, group): the month's budget share, spend committed by redemptions, coupons in flight."""
    month_start = date.replace(day=1)
    redemptions = read_dataset(lake, "raw/coupon_redemptions", country, start=month_start,
                               end=date - dt.timedelta(days=1))
    recent = read_dataset(lake, DECISIONS, country, start=min(month_start, date - dt.timedelta(days=40)),
                          end=date - dt.timedelta(days=1))
    committed: dict[tuple[str, str], float] = {}
    outstanding: dict[tuple[str, str], float] = {}
    if len(recent):
        groups = recent.set_index("trace_id")["group"]
        if len(redemptions):
            redemptions = redemptions.assign(group=redemptions["trace_id"].map(groups))
            # the marketplace's share of each discount, as the budget ledger counts it
            share = {c.id: c.coupon.cost_share for c in catalog.campaigns}
            redemptions["cost"] = (redemptions["discount_amount"]
                                   * redemptions["campaign_id"].map(share).fillna(1.0))
            committed = redemptions.groupby(["campaign_id", "group"])["cost"].sum().to_dict()
        realized = redemptions.groupby("trace_id")["cost"].sum() if len(redemptions) else pd.Series(dtype=float)
        window = recent[pd.to_datetime(recent["date"]).dt.date >= date - dt.timedelta(days=COUPON_VALIDITY_DAYS)]
        window = window[window["expected_cost"].fillna(0) > 0]
        if len(window):
            left = (window["expected_cost"] - window["trace_id"].map(realized).fillna(0.0)).clip(lower=0)
            outstanding = left.groupby([window["campaign_id"], window["group"]]).sum().to_dict()
    out = {}
    for c in catalog.active(date, country):
        shares = {"bau": c.shares.bau, "bandit": c.shares.bandit}
        for group, state in group_budgets(
                c.id, c.budget.monthly, shares,
                {g: committed.get((c.id, g), 0.0) for g in shares},
                {g: outstanding.get((c.id, g), 0.0) for g in shares}, date, scale).items():
            out[(c.id, group)] = state
    return out


def day_inputs(lake: Path, country: str, data_date: dt.date, catalog: Catalog, policy: ServingPolicy,
               budget_scale: float = 1.0, salt: str = "pushgrowth") -> DayInputs:
    """Everything `assign` needs to decide `data_date + 1` from the data of `data_date`."""
    date = data_date + dt.timedelta(days=1)
    audiences = _require(lake, "marts/audiences", country, data_date)
    context = _require(lake, "marts/user_features", country, data_date)
    previous = read_dataset(lake, DECISIONS, country, start=date - dt.timedelta(days=PLAN_DAYS - 1),
                            end=date - dt.timedelta(days=1))
    return DayInputs(date=date, country=country, catalog=catalog, audiences=audiences,
                     context=context[context["user_id"].isin(np.unique(audiences["user_id"]))],
                     scheduled=scheduled_pushes(previous, date),
                     budgets=budget_states(lake, country, date, catalog, budget_scale), policy=policy, salt=salt)
