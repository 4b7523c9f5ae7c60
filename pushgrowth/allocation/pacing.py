"""Budget pacing: no campaign's month exceeds its budget, and spend is spread evenly over the month.

A campaign's monthly coupon budget is split between its BAU and bandit groups by their traffic shares, so the
comparison is "the same money, spent differently". For each group and day:

- `remaining` = the group's budget - coupon cost already committed this month (redemptions) - the expected cost
  of coupons still in wallets (sent in the last validity days, not yet redeemed);
- the day's `target` = remaining / days left in the month (today included): an even pace;
- the bandit prices coupons: each coupon option's score is lowered by `price x expected cost`, and the smallest
  price whose projected spend fits the target is found by bisection (spend falls as the price rises). When even
  an infinite price would not fit (exploration alone costs too much), coupons are switched off for the day;
- BAU keeps its fixed coupon for users in a stable random order until the target is reached; the rest get the
  plan without a coupon (or no push, when the campaign has no coupon-free option).
- The target bounds the bandit's *expected* spend; its draws are random, and a few users drawing costly coupons
  can spend more than is left of the month (a small campaign on its last days). `cap_draws` makes the month's
  budget a hard limit on what the drawn plans may cost, with exact propensities.

Expected cost = P(redeemed) x the discount on the user's typical order x the marketplace's cost share, with
P(redeemed) from the model's redemption head.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class BudgetState:
    """One campaign group's budget for the month, as of the start of a decision day."""

    campaign_id: str
    group: str
    budget: float
    committed: float
    outstanding: float
    days_left: int

    @property
    def remaining(self) -> float:
        return max(0.0, self.budget - self.committed - self.outstanding)

    @property
    def target(self) -> float:
        return self.remaining / max(1, self.days_left)

    def to_dict(self) -> dict:
        return {**asdict(self), "remaining": self.remaining, "target": self.target}


def days_left_in_month(date: dt.date) -> int:
    """Days from `date` to the end of its month, both included."""
    return calendar.monthrange(date.year, date.month)[1] - date.day + 1


class MissingBudgetError(LookupError):
    """A campaign running on a decision day has no row in the budget ledger it is paced with."""


def budget_states(ledger: pd.DataFrame, date: dt.date, campaign_ids: list[str]) -> dict[tuple[str, str], BudgetState]:
    """The BAU and bandit budget states of each campaign on decision day `date`, from the budget ledger of the
    day before (`pushgrowth.campaigns.budget.budget_ledger`: budget scaled and split by group there, once).

    Raises MissingBudgetError naming the campaigns the ledger lacks (a catalog published after the ledger was
    built: re-materialize budget_ledger for that day)."""
    month = date.replace(day=1)
    rows = ledger[(ledger["month"] == month) & ledger["group"].isin(["bau", "bandit"])] if len(ledger) else ledger
    found = {(str(r.campaign_id), str(r.group)): r for r in rows.itertuples(index=False)} if len(rows) else {}
    missing = sorted({cid for cid in campaign_ids for g in ("bau", "bandit") if (cid, g) not in found})
    if missing:
        raise MissingBudgetError(f"the budget ledger has no {month:%Y-%m} rows for campaigns {', '.join(missing)} "
                                 f"(running on {date}); re-materialize budget_ledger for {date - dt.timedelta(days=1)}")
    days = days_left_in_month(date)
    return {(cid, g): BudgetState(cid, g, float(found[(cid, g)].budget), float(found[(cid, g)].committed),
                                  float(found[(cid, g)].outstanding), days)
            for cid in campaign_ids for g in ("bau", "bandit")}


def price_for_target(spend: Callable[[float], float], target: float, iterations: int = 40,
                     max_price: float = 1e9) -> float:
    """The smallest price >= 0 with spend(price) <= target; `math.inf` when no finite price is enough.

    `spend` must not increase with the price (a higher price never makes coupons more likely).
    """
    if spend(0.0) <= target:
        return 0.0
    hi = 1e-6
    while spend(hi) > target:
        if hi >= max_price:
            return math.inf
        hi = min(hi * 4.0, max_price)
    lo = hi / 4.0 if hi > 1e-6 else 0.0
    for _ in range(iterations):
        mid = (lo + hi) / 2.0
        if spend(mid) > target:
            lo = mid
        else:
            hi = mid
    return hi


def thin_coupons(expected_cost: np.ndarray, target: float, order: np.ndarray) -> np.ndarray:
    """Which users keep their fixed coupon: the first ones in `order` whose cumulative expected cost fits."""
    cost = np.asarray(expected_cost, dtype=np.float64)
    keep = np.zeros(len(cost), dtype=bool)
    if not len(cost):
        return keep
    ranked = np.argsort(order, kind="stable")
    within = np.cumsum(cost[ranked]) <= target + 1e-9
    keep[ranked] = within | (cost[ranked] <= 0)
    return keep


def cap_draws(drawn_cost: np.ndarray, max_cost: np.ndarray, remaining: float, order: np.ndarray) -> np.ndarray:
    """Which users may keep a coupon so that the drawn plans never cost more than `remaining`.

    Users are taken in `order`; a user keeps the plan drawn while what is left covers the costliest coupon the
    user could have drawn (`max_cost`); the others must draw again without coupons. A user's permission depends
    only on the draws of users before them, never on their own, so the probability of the plan they end up with
    (drawn from the block the permission allows) is an exact propensity. Users who could not draw a paid coupon
    keep their plan. When the costliest coupons of everyone fit, everyone keeps it.
    """
    cost = np.asarray(drawn_cost, dtype=np.float64)
    top = np.asarray(max_cost, dtype=np.float64)
    keep = np.ones(len(cost), dtype=bool)
    if not len(cost) or top.sum() <= remaining + 1e-9:
        return keep
    ranked = np.argsort(order, kind="stable")
    c, m = cost[ranked], top[ranked]
    before = np.concatenate([[0.0], np.cumsum(c)[:-1]])
    short = (m > 0) & (remaining - before < m - 1e-9)
    if not short.any():
        return keep
    first = int(np.argmax(short))
    spent = float(before[first])
    for j in range(first, len(c)):   # from the first user the rest no longer covers: in order, one by one
        if m[j] <= 0:
            continue
        if remaining - spent >= m[j] - 1e-9:
            spent += c[j]
        else:
            keep[ranked[j]] = False
    return keep
