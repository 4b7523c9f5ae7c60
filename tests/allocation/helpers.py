"""Builders for the allocation tests (a small World's users, synthetic day inputs, budgets) and independent
re-statements of the documented scheduling rules to check `assign` against.

Everything is seeded; the session fixtures in `conftest.py` build the expensive pieces once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from pushgrowth.allocation.assign import DayInputs
from pushgrowth.allocation.pacing import BudgetState, days_left_in_month
from pushgrowth.bandit.serving import ServingPolicy
from pushgrowth.bench import synthetic_context
from pushgrowth.campaigns import Catalog
from pushgrowth.domain import PLAN_DAYS
from pushgrowth.sim import World, WorldConfig

REPO = Path(__file__).resolve().parents[2]
COUNTRY = "MLB"
DATE = dt.date(2026, 9, 2)
"""A Wednesday on which 22 MLB push campaigns are active."""
WORLD_USERS = 3_000
WORLD_SEED = 11


@dataclass
class Population:
    """The users of a small World: the users snapshot (for the outbox) and a user_features-shaped context."""

    users: pd.DataFrame
    context: pd.DataFrame

    @property
    def opted_in(self) -> np.ndarray:
        """Users who accept pushes and have a context row (the audiences mart only holds such users)."""
        ok = self.users["push_opt_in"].astype(bool) & self.users["user_id"].isin(self.context["user_id"])
        return np.sort(self.users.loc[ok, "user_id"].to_numpy(np.int64))


def load_population() -> Population:
    world = World(WorldConfig.build((COUNTRY,), users=WORLD_USERS, seed=WORLD_SEED,
                                    start_date=DATE - dt.timedelta(days=1)))
    context = synthetic_context(world, COUNTRY, WORLD_SEED)
    users = world.step()[COUNTRY]["users"].to_pandas()
    assert world.today == DATE
    # some users never bought: their order value falls back to the country's reference
    rng = np.random.default_rng(WORLD_SEED)
    context.loc[rng.random(len(context)) < 0.05, "avg_order_value"] = np.nan
    return Population(users=users, context=context)


def active_push(catalog: Catalog, date: dt.date = DATE, country: str = COUNTRY) -> list:
    return [c for c in catalog.active(date, country) if c.channel == "push"]


def make_audiences(user_ids: np.ndarray, campaign_ids: list[str], seed: int, per_user: int = 4,
                   cap: int = 6, low_left_share: float = 0.15) -> pd.DataFrame:
    """Each user eligible (by the mart) for 1..per_user random campaigns; some users with few pushes left."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in user_ids:
        k = int(rng.integers(1, per_user + 1))
        for cid in rng.choice(campaign_ids, size=min(k, len(campaign_ids)), replace=False):
            rows.append((int(u), str(cid)))
    frame = pd.DataFrame(rows, columns=["user_id", "campaign_id"])
    left = np.full(len(user_ids), cap)
    low = rng.random(len(user_ids)) < low_left_share
    left[low] = rng.integers(0, 3, low.sum())
    frame["weekly_pushes_left"] = frame["user_id"].map(dict(zip(user_ids.tolist(), left.tolist()))).astype("int64")
    return frame


def make_scheduled(user_ids: np.ndarray, date: dt.date, seed: int, share: float = 0.5) -> pd.DataFrame:
    """Pushes of earlier plans: for `share` of the users, 1-3 distinct days among date..date+5 (earlier plans
    reach at most six days ahead), never two on one day; plus a few pushes already sent in the days before `date`
    (they count in the 7-day windows around the plan)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in user_ids:
        if rng.random() < share:
            for off in rng.choice(PLAN_DAYS - 1, size=int(rng.integers(1, 4)), replace=False):
                rows.append((int(u), date + dt.timedelta(days=int(off))))
        if rng.random() < 0.05:
            rows.append((int(u), date - dt.timedelta(days=int(rng.integers(1, 4)))))
    frame = pd.DataFrame(rows, columns=["user_id", "send_date"])
    frame["user_id"] = frame["user_id"].astype("int64")
    frame["send_date"] = pd.to_datetime(frame["send_date"]).astype("datetime64[s]")
    return frame


def empty_scheduled() -> pd.DataFrame:
    return pd.DataFrame({"user_id": pd.Series(dtype="int64"), "send_date": pd.Series(dtype="datetime64[s]")})


def make_budgets(catalog: Catalog, date: dt.date = DATE, country: str = COUNTRY, scale: float = 1.0,
                 committed: dict[tuple[str, str], float] | None = None,
                 outstanding: dict[tuple[str, str], float] | None = None) -> dict[tuple[str, str], BudgetState]:
    committed, outstanding = committed or {}, outstanding or {}
    out = {}
    for c in catalog.active(date, country):
        treated = c.shares.bau + c.shares.bandit
        for group in ("bau", "bandit"):  # the budget split by traffic share, as the ledger makes it
            budget = c.budget.monthly * scale * getattr(c.shares, group) / treated if treated else 0.0
            out[(c.id, group)] = BudgetState(c.id, group, budget, committed.get((c.id, group), 0.0),
                                             outstanding.get((c.id, group), 0.0), days_left_in_month(date))
    return out


def with_salt(catalog: Catalog, salt: str) -> Catalog:
    """The same catalog with every campaign's groups drawn with another salt."""
    return catalog.model_copy(update={"campaigns": tuple(
        c.model_copy(update={"shares": c.shares.model_copy(update={"salt": salt})}) for c in catalog.campaigns)})


def exhaust(budgets: dict[tuple[str, str], BudgetState], keys) -> dict[tuple[str, str], BudgetState]:
    """The same budgets with these (campaign, group) fully committed."""
    out = dict(budgets)
    for key in keys:
        out[key] = replace(out[key], committed=out[key].budget)
    return out


def with_targets(budgets: dict[tuple[str, str], BudgetState], targets: dict[tuple[str, str], float]
                 ) -> dict[tuple[str, str], BudgetState]:
    """The same budgets with the daily target of some groups set exactly (budget = target x days left)."""
    out = dict(budgets)
    for key, target in targets.items():
        s = out[key]
        out[key] = replace(s, budget=target * s.days_left, committed=0.0, outstanding=0.0)
    return out


def day_inputs(catalog: Catalog, population: Population, policy: ServingPolicy, seed: int, *,
               users: int = 900, date: dt.date = DATE, budgets=None, scheduled: pd.DataFrame | None = None,
               campaign_ids: list[str] | None = None, per_user: int = 4) -> DayInputs:
    """DayInputs for `users` random opted-in users of the World, over the active MLB push campaigns."""
    rng = np.random.default_rng(seed)
    pool = population.opted_in
    user_ids = np.sort(rng.choice(pool, size=min(users, len(pool)), replace=False))
    ids = campaign_ids or [c.id for c in active_push(catalog, date)]
    cap = catalog.policies[COUNTRY].max_weekly_pushes
    audiences = make_audiences(user_ids, ids, seed, per_user=per_user, cap=cap)
    context = population.context[population.context["user_id"].isin(user_ids)].reset_index(drop=True)
    return DayInputs(
        date=date, country=COUNTRY, catalog=catalog, audiences=audiences, context=context,
        scheduled=make_scheduled(user_ids, date, seed + 1000) if scheduled is None else scheduled,
        budgets=make_budgets(catalog, date) if budgets is None else budgets, policy=policy)


# ---------------------------------------------------------------------------------------------------------------
# Independent re-statements of the documented rules (written from the README and docstrings, not from the code)

WEEK = tuple(range(PLAN_DAYS))


def send_offsets(date: dt.date, weekday: int, frequency: int) -> tuple[int, ...]:
    """The README's rule: the first push on the next `weekday` on or after `date`, further ones every 3 days
    (two pushes) or every 2 days (three pushes), wrapping within the seven days of the plan."""
    first = (weekday - date.weekday()) % 7
    step = {1: 0, 2: 3, 3: 2}[frequency]
    return tuple(sorted({(first + k * step) % 7 for k in range(frequency)}))


@dataclass
class UserWeek:
    taken: frozenset[int]
    """Day offsets 0..6 from the decision date that already have a push of an earlier plan."""
    scheduled: int
    """Pushes of earlier plans in the plan week."""
    left: int
    capacity: int
    """The room of the plan's own week under the country's cap: min(cap - scheduled, left)."""
    around: tuple[int, ...] = ()
    """Offsets (-6..12) of every push of an earlier plan around the plan's week, sent or in flight."""
    cap: int = 0


def user_weeks(inputs: DayInputs) -> dict[int, UserWeek]:
    """Per user of the (active-campaign, known-context) audiences: the plan week as earlier plans left it."""
    active = {c.id for c in active_push(inputs.catalog, inputs.date, inputs.country)}
    aud = inputs.audiences[inputs.audiences["campaign_id"].isin(active)
                           & inputs.audiences["user_id"].isin(inputs.context["user_id"])]
    cap = inputs.catalog.policies[inputs.country].max_weekly_pushes
    sched = inputs.scheduled.copy()
    sched["offset"] = (pd.to_datetime(sched["send_date"]) - pd.Timestamp(inputs.date)).dt.days
    around = sched[sched["offset"].between(-(PLAN_DAYS - 1), 2 * PLAN_DAYS - 2)]
    sched = sched[(sched["offset"] >= 0) & (sched["offset"] < PLAN_DAYS)]
    taken = sched.groupby("user_id")["offset"].agg(lambda s: frozenset(int(v) for v in s)).to_dict()
    count = sched.groupby("user_id").size().to_dict()
    every = around.groupby("user_id")["offset"].agg(lambda s: tuple(int(v) for v in s)).to_dict()
    out = {}
    for user, left in aud.groupby("user_id")["weekly_pushes_left"].min().items():
        days = taken.get(user, frozenset())
        n = int(count.get(user, 0))
        out[int(user)] = UserWeek(days, n, int(left), min(cap - n, int(left)), every.get(user, ()), cap)
    return out


def within_every_window(offsets, cap: int) -> bool:
    """Brute force: no 7 consecutive days (starting six days before the plan to six days into it) hold more
    than `cap` of the pushes at `offsets`."""
    return all(sum(start <= o < start + PLAN_DAYS for o in offsets) <= cap
               for start in range(-(PLAN_DAYS - 1), PLAN_DAYS))


def fits(week: UserWeek, date: dt.date, weekday: int, frequency: int, campaign_cap: int | None = None) -> bool:
    """A plan fits: no push on a taken day, within the week's room and the campaign's cap, and the country's cap
    over every 7-day window with the pushes already around it (the scheduled frames here carry no campaign,
    so the campaign's cap bounds the plan alone)."""
    new = send_offsets(date, weekday, frequency)
    return (frequency <= week.capacity and (campaign_cap is None or frequency <= campaign_cap)
            and not set(new) & week.taken and within_every_window([*week.around, *new], week.cap))


def eligible_campaigns(inputs: DayInputs) -> dict[int, list[str]]:
    """Per user, the active push campaigns of its audience rows with at least one schedule that fits."""
    weeks = user_weeks(inputs)
    campaigns = {c.id: c for c in active_push(inputs.catalog, inputs.date, inputs.country)}
    out: dict[int, list[str]] = {}
    aud = inputs.audiences[inputs.audiences["campaign_id"].isin(campaigns)
                           & inputs.audiences["user_id"].isin(inputs.context["user_id"])]
    for user, cid in aud[["user_id", "campaign_id"]].drop_duplicates().itertuples(index=False):
        c = campaigns[cid]
        week = weeks[int(user)]
        if any(fits(week, inputs.date, wd, f, c.frequency.weekly_cap)
               for wd in c.weekday_numbers for f in c.frequency.options):
            out.setdefault(int(user), []).append(cid)
    return out


def expected_bau_schedule(c, week: UserWeek, date: dt.date) -> tuple[int, int] | None:
    """The BAU (weekday, frequency), moved as documented in `bau_plan`: the next allowed weekday of the campaign
    (same frequency), then lower frequencies (each from the BAU weekday on), then higher ones."""
    weekdays, freqs = list(c.weekday_numbers), list(c.frequency.options)
    w0 = weekdays.index(["mon", "tue", "wed", "thu", "fri", "sat", "sun"].index(c.bau.weekday))
    f0 = freqs.index(c.bau.frequency)
    order = list(range(f0, -1, -1)) + list(range(f0 + 1, len(freqs)))
    for fi in order:
        for k in range(len(weekdays)):
            wd = weekdays[(w0 + k) % len(weekdays)]
            if fits(week, date, wd, freqs[fi], c.frequency.weekly_cap):
                return wd, freqs[fi]
    return None
