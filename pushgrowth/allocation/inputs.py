"""What daily assignments decide from: audiences, context, plans in flight and the budget state, as frames.

The Dagster layer reads them from the lake (`pushgrowth.defs.reads`): marts exported by dbt, the decisions of
the days before and the budget ledger, so assignments never open the warehouse while dbt may be writing it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pushgrowth.allocation.assign import DayInputs, scheduled_pushes
from pushgrowth.allocation.windows import HISTORY_DAYS
from pushgrowth.allocation.pacing import budget_states
from pushgrowth.bandit.serving import ServingPolicy
from pushgrowth.campaigns import Catalog
from pushgrowth.domain import PLAN_DAYS


def previous_window(date: dt.date) -> tuple[dt.date, dt.date]:
    """The decision dates whose plans have pushes in the 7-day windows around a plan of `date`: sent on the six
    days before it, or still in flight (`allocation.windows.HISTORY_DAYS`)."""
    return date - dt.timedelta(days=HISTORY_DAYS), date - dt.timedelta(days=1)


def day_inputs(country: str, data_date: dt.date, catalog: Catalog, policy: ServingPolicy, audiences: pd.DataFrame,
               context: pd.DataFrame, previous: pd.DataFrame, ledger: pd.DataFrame) -> DayInputs:
    """Everything `assign` needs to decide `data_date + 1` from the data of `data_date`: its audiences and
    user_features, the decisions of `previous_window`, and the budget ledger of `data_date`."""
    date = data_date + dt.timedelta(days=1)
    return DayInputs(date=date, country=country, catalog=catalog, audiences=audiences,
                     context=context[context["user_id"].isin(np.unique(audiences["user_id"]))],
                     scheduled=scheduled_pushes(previous, date, since=date - dt.timedelta(days=PLAN_DAYS - 1)),
                     budgets=budget_states(ledger, date, [c.id for c in catalog.active(date, country)]),
                     policy=policy)
