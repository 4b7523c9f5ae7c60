"""Quality fixtures: seeded World extracts in which every table has rows (pushes with coupons are delivered)."""

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pushgrowth.bandit.features import TONE_COLUMNS
from pushgrowth.defs.resources import HomeResource
from pushgrowth.home import Home
from pushgrowth.plans import expand_plans, trace_ids
from pushgrowth.sim import World, WorldConfig

DAY = dt.date(2026, 9, 1)
NEXT_DAY = DAY + dt.timedelta(days=1)


def push_outbox(world: World, country: str, share: float, seed: int) -> pd.DataFrame:
    """One push today at 19:00 local for a random share of the country's users, a coupon on every other one."""
    pop = world.population(country)
    users = pop.user_id[np.random.default_rng(seed).random(pop.n) < share]
    coupon = np.arange(len(users)) % 2 == 1
    plans = pd.DataFrame({
        "country": country, "campaign_id": "quality", "user_id": users, "template_id": "t1", "tone": "benefit",
        "value_proposition": "free_shipping", "coupon_kind": np.where(coupon, "amount", "none"),
        "coupon_value": np.where(coupon, 500.0, 0.0), "coupon_cap": 0.0, "send_hour_local": 19,
        "send_weekday": world.today.weekday(), "frequency": 1,
        "coupon_code": np.where(coupon, "QUALITY", None),
    })
    plans["trace_id"] = trace_ids(world.today, country, plans["campaign_id"], plans["user_id"])
    return expand_plans(plans, world.today)


def world_days(days: int, users: int, seed: int = 1, country: str = "MLA") -> dict[dt.date, dict[str, pa.Table]]:
    """{date: {table: pyarrow.Table}} from 2026-09-01, with pushes delivered to 60% of the users every day."""
    world = World(WorldConfig.build((country,), users=users, seed=seed, start_date=DAY))
    out = {}
    for i in range(days):
        world.deliver(push_outbox(world, country, share=0.6, seed=i))
        out[DAY + dt.timedelta(days=i)] = {name: detached(t) for name, t in world.step()[country].items()}
    return out


def detached(table: pa.Table) -> pa.Table:
    """A copy that owns its buffers: the World's extracts share memory with its state and change as it steps."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return pa.ipc.open_stream(sink.getvalue()).read_all()


@pytest.fixture(scope="session")
def busy_days():
    """Two days of 2000 MLA users: every table, opt-outs and redemptions included, has rows."""
    days = world_days(2, users=2000)
    assert all(t.num_rows > 0 for tables in days.values() for t in tables.values())
    return days


@pytest.fixture(scope="session")
def small_days():
    """Two days of 300 MLA users, for the Dagster runs."""
    return world_days(2, users=300)


@pytest.fixture
def home(tmp_path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture
def resources(home):
    return {"home": HomeResource(root=str(home.root))}


def user_features_frame(users: pa.Table) -> pd.DataFrame:
    """A clean user_features partition derived from a raw users snapshot (stands in for the dbt model)."""
    u = users.to_pandas()
    date = u["snapshot_date"]
    ordered = u["lifetime_orders"] > 0
    frame = pd.DataFrame({
        "country": u["country"], "date": date, "user_id": u["user_id"], "segment": "active",
        "platform": u["platform"], "region": u["region"], "timezone": u["timezone"],
        "push_opt_in": u["push_opt_in"], "mp_user": u["mp_user"], "category_interest": u["category_interest"],
        "days_since_signup": [(d - s).days for d, s in zip(date, u["signup_date"], strict=True)],
        "days_since_last_session": [(d - s).days if s is not None else None
                                    for d, s in zip(date, u["last_session_date"], strict=True)],
        "days_since_last_order": [(d - s).days if s is not None else None
                                  for d, s in zip(date, u["last_order_date"], strict=True)],
        "lifetime_orders": u["lifetime_orders"], "lifetime_gmv": u["lifetime_gmv"],
        "avg_order_value": (u["lifetime_gmv"] / u["lifetime_orders"]).where(ordered),
    })
    for column in ("sessions_28d", "orders_28d", "pushes_7d", "pushes_28d", "opens_28d", "coupon_redemptions_90d"):
        frame[column] = 0
    for column in ("gmv_28d", "share_sessions_morning", "share_sessions_midday", "share_sessions_afternoon",
                   "share_sessions_evening", "share_sessions_night", "share_sessions_weekend", "open_rate_28d",
                   "coupon_discount_90d"):
        frame[column] = 0.0
    frame["session_hour_mean"] = 20.5
    frame["session_hour_concentration"] = 0.8
    frame["usual_active_hour"] = u["usual_active_hour"]
    frame["weekend_activity_share"] = u["weekend_activity_share"]
    frame["days_since_last_push"] = pd.array([None] * len(frame), dtype="Int64")
    for column in TONE_COLUMNS:
        frame[column] = 0
    return frame
