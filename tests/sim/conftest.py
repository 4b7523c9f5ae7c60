import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pushgrowth.domain import ActionSpace
from pushgrowth.plans import expand_plans, trace_ids
from pushgrowth.sim import World, WorldConfig

SPACE = ActionSpace(
    value_proposition="free_shipping",
    coupon_kind="amount",
    coupon_values=(0.0, 10.0, 25.0),
    templates=(("urg", "urgency"), ("ben", "benefit"), ("per", "personal"), ("cur", "curiosity")),
    hours=(9, 12, 15, 19, 21),
    weekdays=tuple(range(7)),
    frequencies=(1, 2),
)


@pytest.fixture(scope="session")
def space() -> ActionSpace:
    return SPACE


def outbox_for(world: World, country: str, users: np.ndarray, actions: pd.DataFrame, campaign: str = "c1"):
    """Outbox rows (one per push) for one plan per user decided today."""
    plans = actions.reset_index(drop=True).copy()
    plans["user_id"] = users
    plans["country"] = country
    plans["campaign_id"] = campaign
    plans["trace_id"] = trace_ids(world.today, country, plans["campaign_id"], plans["user_id"])
    plans["coupon_code"] = np.where(plans["coupon_value"] > 0, "CUPOM", None)
    plans["send_hour_local"] = plans["send_hour"]
    return expand_plans(plans, world.today)


def small_world(users: int = 400, seed: int = 1, countries=("MLA", "MLB", "MLM")) -> World:
    return World(WorldConfig.build(countries, users=users, seed=seed, start_date=dt.date(2026, 9, 1)))
