"""Budget pacing: days left, budget states per group, the coupon price for a target and the BAU thinning."""

from __future__ import annotations

import calendar
import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import pandas as pd

from pushgrowth.allocation.pacing import (
    BudgetState,
    MissingBudgetError,
    budget_states,
    cap_draws,
    days_left_in_month,
    price_for_target,
    thin_coupons,
)
from pushgrowth.campaigns.budget import group_budgets

# --- days left ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("date,left", [
    (dt.date(2026, 9, 1), 30), (dt.date(2026, 9, 2), 29), (dt.date(2026, 9, 30), 1), (dt.date(2026, 1, 31), 1),
    (dt.date(2026, 12, 31), 1), (dt.date(2026, 12, 1), 31), (dt.date(2026, 2, 1), 28), (dt.date(2026, 2, 28), 1),
    (dt.date(2028, 2, 28), 2), (dt.date(2028, 2, 29), 1), (dt.date(2028, 2, 1), 29), (dt.date(2000, 2, 28), 2),
    (dt.date(2100, 2, 28), 1), (dt.date(2026, 4, 30), 1), (dt.date(2026, 4, 29), 2),
])
def test_days_left_in_month_counts_today_and_the_last_day(date, left):
    assert days_left_in_month(date) == left


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 12, 31)))
def test_days_left_ends_on_the_last_day_of_the_month(date):
    left = days_left_in_month(date)
    last = date + dt.timedelta(days=left - 1)
    assert 1 <= left <= 31
    assert last.month == date.month and last.year == date.year
    assert (last + dt.timedelta(days=1)).day == 1
    assert left == calendar.monthrange(date.year, date.month)[1] - date.day + 1


# --- budget states ----------------------------------------------------------------------------------------------

def test_budget_state_remaining_and_target():
    s = BudgetState("c", "bandit", budget=1000.0, committed=300.0, outstanding=100.0, days_left=10)
    assert s.remaining == 600.0 and s.target == 60.0
    over = BudgetState("c", "bau", budget=1000.0, committed=900.0, outstanding=200.0, days_left=5)
    assert over.remaining == 0.0 and over.target == 0.0
    last_day = BudgetState("c", "bau", budget=100.0, committed=0.0, outstanding=0.0, days_left=0)
    assert last_day.target == 100.0
    d = s.to_dict()
    assert d["remaining"] == 600.0 and d["target"] == 60.0 and d["campaign_id"] == "c" and d["group"] == "bandit"


@settings(max_examples=200, deadline=None)
@given(monthly=st.floats(0, 1e7), holdout=st.floats(0, 1), bandit_part=st.floats(0, 1), scale=st.floats(1e-6, 10))
def test_group_budgets_split_by_traffic_shares(monthly, holdout, bandit_part, scale):
    treated = 1 - holdout
    shares = {"holdout": holdout, "bau": treated * (1 - bandit_part), "bandit": treated * bandit_part}
    out = group_budgets(monthly, shares, scale)
    assert set(out) == {"bau", "bandit"}
    if shares["bau"] + shares["bandit"] > 0:
        assert out["bau"] + out["bandit"] == pytest.approx(monthly * scale, rel=1e-9, abs=1e-9)
        total = shares["bau"] + shares["bandit"]
        assert out["bandit"] == pytest.approx(monthly * scale * shares["bandit"] / total, rel=1e-9, abs=1e-9)
    else:
        assert out["bau"] == out["bandit"] == 0.0


def test_group_budgets_examples():
    out = group_budgets(90_000, {"holdout": 0.1, "bau": 0.45, "bandit": 0.45})
    assert out["bau"] == pytest.approx(45_000) and out["bandit"] == pytest.approx(45_000)
    out = group_budgets(90_000, {"holdout": 0.1, "bau": 0.8, "bandit": 0.1}, scale=0.01)
    assert out["bau"] == pytest.approx(800) and out["bandit"] == pytest.approx(100)
    # a group missing from the shares gets nothing; the other gets the whole budget
    out = group_budgets(1_000, {"holdout": 0.1, "bandit": 0.9})
    assert out["bau"] == 0.0 and out["bandit"] == pytest.approx(1_000)


def ledger(rows: list[tuple[str, str, str, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["campaign_id", "group", "month", "budget", "committed", "outstanding"]).assign(
        month=lambda f: pd.to_datetime(f["month"]).dt.date)


def test_budget_states_take_the_ledger_rows_of_the_decision_days_month():
    rows = ledger([("c", "bau", "2026-09-01", 800, 100, 50), ("c", "bandit", "2026-09-01", 100, 100, 0),
                   ("c", "bau", "2026-10-01", 800, 0, 70), ("c", "bandit", "2026-10-01", 100, 0, 5),
                   ("c", "unattributed", "2026-09-01", 0, 30, 0)])
    states = budget_states(rows, dt.date(2026, 9, 30), ["c"])
    assert set(states) == {("c", "bau"), ("c", "bandit")}
    bau, bandit = states[("c", "bau")], states[("c", "bandit")]
    assert (bau.budget, bau.committed, bau.outstanding, bau.days_left) == (800, 100, 50, 1)
    assert bau.target == pytest.approx(650)                                       # last day: all that remains
    assert bandit.remaining == 0.0 and bandit.target == 0.0                       # spent: nothing left
    october = budget_states(rows, dt.date(2026, 10, 1), ["c"])                    # a new month: its own rows
    assert october[("c", "bau")].committed == 0 and october[("c", "bau")].outstanding == 70
    assert october[("c", "bau")].target == pytest.approx((800 - 70) / 31)


def test_a_campaign_missing_from_the_ledger_is_an_error_naming_it():
    rows = ledger([("c", "bau", "2026-09-01", 800, 0, 0), ("c", "bandit", "2026-09-01", 100, 0, 0)])
    with pytest.raises(MissingBudgetError, match="campaigns new-one .*re-materialize budget_ledger for 2026-09-01"):
        budget_states(rows, dt.date(2026, 9, 2), ["c", "new-one"])


# --- price for a target ------------------------------------------------------------------------------------------

@st.composite
def logistic_spend(draw):
    """A spend that falls with the price like the bandit's: users' coupon probabilities under a priced softmax,
    with an exploration floor."""
    n = draw(st.integers(1, 6))
    cost = np.array(draw(st.lists(st.floats(0.01, 100), min_size=n, max_size=n)))
    score = np.array(draw(st.lists(st.floats(-5, 5), min_size=n, max_size=n)))
    floor = draw(st.floats(0, 0.2))
    temperature = draw(st.floats(0.05, 5))

    def spend(price: float) -> float:
        assert price >= 0, "prices are never negative"
        z = np.clip((score - price * cost) / temperature, -700, 700)
        p = (1 - floor) / (1 + np.exp(-z)) + floor / 2
        return float((p * cost).sum())

    return spend, float(floor / 2 * cost.sum())


@st.composite
def step_spend(draw):
    """A non-increasing step function (a discontinuous spend, e.g. users dropping coupons one by one)."""
    k = draw(st.integers(1, 6))
    thresholds = sorted(draw(st.lists(st.floats(1e-5, 1e6), min_size=k, max_size=k)))
    drops = draw(st.lists(st.floats(0.1, 50), min_size=k, max_size=k))
    base = draw(st.floats(0, 10))

    def spend(price: float) -> float:
        assert price >= 0
        return base + sum(d for t, d in zip(thresholds, drops) if price < t)

    return spend, base


def _check_smallest(spend, target: float, price: float) -> None:
    """`price` meets the target and (up to the bisection's precision) nothing smaller on a grid does."""
    assert math.isfinite(price) and price >= 0
    assert spend(price) <= target
    if price == 0:
        return
    assert spend(price * (1 - 1e-9)) > target or spend(max(0.0, price - 1e-9)) > target
    grid = np.concatenate([[0.0], np.geomspace(1e-7, max(price * 4, 1e-6), 400), [price]])
    meets = [g for g in grid if spend(g) <= target]
    smallest = min(meets)
    assert price <= smallest * (1 + 1e-9) + 1e-12
    below = [g for g in grid if g < price * (1 - 1e-9)]
    assert all(spend(g) > target for g in below), "a smaller grid price already meets the target"


@settings(max_examples=200, deadline=None)
@given(case=logistic_spend(), share=st.floats(0, 1.5))
def test_price_is_the_smallest_meeting_the_target_for_a_smooth_spend(case, share):
    spend, floor = case
    target = floor + share * (spend(0.0) - floor)
    price = price_for_target(spend, target)
    if spend(0.0) <= target:
        assert price == 0.0
    elif spend(1e9) > target:
        assert price == math.inf
    else:
        assume(spend(2.5e8) <= target)  # see test_price_within_max_price_is_found for larger thresholds
        _check_smallest(spend, target, price)


@settings(max_examples=200, deadline=None)
@given(case=step_spend(), extra=st.floats(-1, 200))
def test_price_is_the_smallest_meeting_the_target_for_a_step_spend(case, extra):
    spend, base = case
    target = base + extra
    price = price_for_target(spend, target)
    if target < base:
        assert price == math.inf
    else:
        _check_smallest(spend, target, price)


def test_price_examples():
    assert price_for_target(lambda p: 10.0, 10.0) == 0.0
    assert price_for_target(lambda p: 10.0, 9.99) == math.inf
    assert price_for_target(lambda p: math.exp(-p), 0.5) == pytest.approx(math.log(2), rel=1e-9)
    assert price_for_target(lambda p: 1 / (1 + p), 0.01) == pytest.approx(99, rel=1e-9)
    # a threshold below the first probe (1e-6)
    assert price_for_target(lambda p: 5.0 if p < 3e-7 else 1.0, 2.0) == pytest.approx(3e-7, rel=1e-6)
    # a floor above the target: no price is enough
    assert price_for_target(lambda p: 1.0 + math.exp(-p), 0.5) == math.inf
    assert price_for_target(lambda p: 0.0, 0.0) == 0.0


def test_price_is_inf_when_max_price_is_not_enough():
    assert price_for_target(lambda p: 5.0 if p < 2e9 else 1.0, 2.0) == math.inf
    assert price_for_target(lambda p: 5.0 if p < 50.0 else 1.0, 2.0, max_price=10.0) == math.inf


@pytest.mark.parametrize("threshold,max_price", [
    (1e8, 1e9), (2.5e8, 1e9), (3e8, 1e9), (5e8, 1e9), (9.9e8, 1e9), (1.0, 10.0), (5.0, 10.0), (9.0, 10.0),
])
def test_price_within_max_price_is_found(threshold, max_price):
    """Documented: `inf` only "when no finite price is enough". A threshold at or below `max_price` is a finite
    price that is enough, so the smallest price meeting the target must be returned, not inf."""
    spend = lambda p: 10.0 if p < threshold else 1.0  # noqa: E731
    assert spend(max_price) <= 5.0
    assert price_for_target(spend, 5.0, max_price=max_price) == pytest.approx(threshold, rel=1e-9)


# --- thinning BAU coupons ----------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(costs=st.lists(st.one_of(st.just(0.0), st.floats(0.01, 100)), min_size=0, max_size=60),
       target=st.floats(0, 500), seed=st.integers(0, 2**32 - 1))
def test_thin_coupons_keeps_the_longest_prefix_that_fits(costs, target, seed):
    cost = np.asarray(costs, dtype=np.float64)
    order = np.random.default_rng(seed).random(len(cost))
    keep = thin_coupons(cost, target, order)
    assert keep.dtype == bool and keep.shape == cost.shape
    assert (keep[cost <= 0]).all(), "coupon-free plans cost nothing and are always kept"
    assert cost[keep].sum() <= target + 1e-9
    ranked = np.argsort(order, kind="stable")
    paid = ranked[cost[ranked] > 0]
    kept = keep[paid]
    # a prefix: once a paid coupon is dropped, every later one in the order is dropped
    assert not (~kept[:-1] & kept[1:]).any()
    # the longest one: the first dropped coupon would not have fitted
    if (~kept).any():
        first_dropped = paid[np.argmax(~kept)]
        assert cost[keep].sum() + cost[first_dropped] > target + 1e-9


def test_thin_coupons_follows_the_given_order_not_the_row_order():
    cost = np.array([10.0, 10.0, 10.0, 10.0])
    order = np.array([0.9, 0.1, 0.5, 0.3])      # rank: row 1, row 3, row 2, row 0
    np.testing.assert_array_equal(thin_coupons(cost, 20.0, order), [False, True, False, True])
    np.testing.assert_array_equal(thin_coupons(cost, 0.0, order), [False] * 4)
    np.testing.assert_array_equal(thin_coupons(cost, 1e9, order), [True] * 4)
    # an expensive coupon early in the order blocks the cheaper ones after it: a prefix, not a knapsack
    np.testing.assert_array_equal(thin_coupons(np.array([5.0, 50.0, 5.0]), 20.0, np.array([0.1, 0.2, 0.3])),
                                  [True, False, False])
    assert thin_coupons(np.array([]), 10.0, np.array([])).shape == (0,)


# --- capping the bandit's draws ------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(0, 60), remaining=st.floats(0, 300), seed=st.integers(0, 2**32 - 1))
def test_cap_draws_never_lets_the_drawn_plans_cost_more_than_remains(data, n, remaining, seed):
    rng = np.random.default_rng(seed)
    top = np.where(rng.random(n) < 0.2, 0.0, rng.uniform(1, 40, n))
    drawn = np.where(rng.random(n) < data.draw(st.floats(0, 1)), top * rng.random(n), 0.0)
    order = rng.random(n)
    keep = cap_draws(drawn, top, remaining, order)
    assert keep.dtype == bool and keep.shape == (n,)
    # the worst case: every user who may keep a coupon had drawn the costliest one
    ranked = np.argsort(order, kind="stable")
    spent = 0.0
    for j in ranked:
        if keep[j] and top[j] > 0:
            assert spent + top[j] <= remaining + 1e-6, "a kept user's costliest coupon would not have fitted"
            spent += drawn[j]
        elif not keep[j]:
            assert spent + top[j] > remaining - 1e-6, "a user was cut while their costliest coupon still fitted"
    assert drawn[keep].sum() <= remaining + 1e-6
    assert keep[top <= 0].all()


def test_cap_draws_depends_on_earlier_users_draws_not_on_a_users_own():
    top = np.array([10.0, 10.0, 10.0, 10.0])
    order = np.array([0.1, 0.2, 0.3, 0.4])
    # 25 left: the first two fit whatever they draw; a later user is cut once more than 15 has been spent
    np.testing.assert_array_equal(cap_draws(np.array([0.0, 0.0, 10.0, 10.0]), top, 25.0, order), [True] * 4)
    np.testing.assert_array_equal(cap_draws(np.array([10.0, 0.0, 10.0, 0.0]), top, 25.0, order),
                                  [True, True, True, False])
    np.testing.assert_array_equal(cap_draws(np.array([10.0, 10.0, 0.0, 0.0]), top, 25.0, order),
                                  [True, True, False, False])
    # a user's own draw never decides their fate: the same earlier draws, a different own draw
    assert cap_draws(np.array([10.0, 10.0, 10.0, 0.0]), top, 25.0, order)[2] == \
        cap_draws(np.array([10.0, 10.0, 0.0, 0.0]), top, 25.0, order)[2]
    np.testing.assert_array_equal(cap_draws(np.array([10.0] * 4), top, 40.0, order), [True] * 4)
    np.testing.assert_array_equal(cap_draws(np.array([0.0, 5.0]), np.array([0.0, 10.0]), 0.0, order[:2]),
                                  [True, False])
    assert cap_draws(np.array([]), np.array([]), 5.0, np.array([])).shape == (0,)
