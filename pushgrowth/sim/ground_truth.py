"""Ground truth: the expected outcome of any weekly push plan for any user, from the World's own model.

For a plan decided on date d, the window is d .. d + MATURITY_DAYS - 1 (the plan's week plus the attribution
days). The expectations use the user's state at decision time (engagement, recent pushes, opt-in), the pushes
other plans already have scheduled for the user in the window (`scheduled`: they tire the user as the plan's
own do), and the same probability functions as the simulation; what cannot be known at decision time (pushes
of plans decided later, engagement drift) is left out, so the oracle is exact up to those effects.

Outcomes, one row per (user, plan):
- `expected_sends`: pushes expected to be delivered; `expected_opens`; `open_rate` = opens / delivered pushes
  (0 for users who cannot receive pushes) — the reward of campaigns whose objective is `open`.
- `p_conversion`: P(at least one order within ATTRIBUTION_DAYS after an open of the plan), organic orders of
  openers included, as attribution counts it — the reward of `conversion` campaigns.
- `net_revenue`: expected take-rate margin of all the user's orders in the window minus coupon costs — the reward
  of `net_revenue` campaigns; `baseline_net_revenue` is the same without any push and `incremental_net_revenue`
  their difference, which can be negative (coupons used on orders that would have happened anyway).
- `expected_coupon_cost`, `p_opt_out`.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pushgrowth.domain import ATTRIBUTION_DAYS, MATURITY_DAYS, plan_send_offsets
from pushgrowth.sim import response as R
from pushgrowth.sim.config import CountryCalibration
from pushgrowth.sim.day import KIND_CODE, TONE_CODE, VP_CODE
from pushgrowth.sim.population import day_index
from pushgrowth.sim.state import CountryState

ACTION_COLUMNS = ("coupon_kind", "coupon_value", "coupon_cap", "value_proposition", "tone", "send_hour",
                  "send_weekday", "frequency")


def _codes(series: pd.Series, mapping: dict[str, int], column: str) -> np.ndarray:
    codes = series.map(mapping)
    if codes.isna().any():
        bad = sorted(set(series[codes.isna()].astype(str)))
        raise ValueError(f"oracle: unknown {column} {bad}; known: {list(mapping)}")
    return codes.to_numpy(np.int64)


def evaluate(
    state: CountryState, calib: CountryCalibration, date: dt.date, idx: np.ndarray, actions: pd.DataFrame,
    cost_share: np.ndarray | float = 1.0, scheduled: np.ndarray | None = None,
) -> pd.DataFrame:
    """Expected outcomes of one plan per row (user `idx`, `actions`) decided on `date`; `scheduled` (rows x
    MATURITY_DAYS) counts the pushes other plans already have queued for the user on each day of the window."""
    missing = [c for c in ACTION_COLUMNS if c not in actions.columns]
    if missing:
        raise ValueError(f"oracle: actions lack columns {missing}; expected {list(ACTION_COLUMNS)}")
    pop, t, m = state.pop, day_index(date), len(idx)
    kind = _codes(actions["coupon_kind"], KIND_CODE, "coupon_kind")
    value = actions["coupon_value"].fillna(0).to_numpy(np.float64)
    cap = actions["coupon_cap"].fillna(0).to_numpy(np.float64)
    vp = _codes(actions["value_proposition"], VP_CODE, "value_proposition")
    tone = _codes(actions["tone"], TONE_CODE, "tone")
    hour = actions["send_hour"].to_numpy(np.float64) + 7 / 60.0
    weekday = actions["send_weekday"].to_numpy(np.int64)
    freq = actions["frequency"].to_numpy(np.int64)
    share = np.broadcast_to(np.asarray(cost_share, dtype=np.float64), (m,))
    has_coupon = (kind > 0) & (value > 0)
    aov = pop.aov[idx].astype(np.float64)
    disc = R.discount(kind, value, cap, aov) * share

    # sends[j] = 1 where the plan pushes on day d + j
    sends = np.zeros((m, 7), dtype=np.int64)
    for wd in range(7):
        for f in (1, 2, 3):
            sel = (weekday == wd) & (freq == f)
            if sel.any():
                sends[np.ix_(sel, plan_send_offsets(date, wd, f))] = 1
    ring = pop.push_ring[idx].astype(np.int64)
    history = np.stack([ring[:, (t - k) % 7] for k in range(1, 7)], axis=1)  # pushes k days before d
    deliverable = pop.push_opt_in[idx] * R.DELIVERY_P

    opens = np.zeros(m)
    conversions = np.zeros(m)
    no_attr = np.ones(m)
    p_stay = np.ones(m)
    p_open_by = np.zeros((m, MATURITY_DAYS))
    # pushes in the seven days up to (fatigue: before) day j, from history, from other plans' queued pushes and
    # from the plan itself; `hist` (without the plan) is what the user would see without this plan
    if scheduled is None:
        scheduled = np.zeros((m, MATURITY_DAYS))
    elif scheduled.shape != (m, MATURITY_DAYS):
        raise ValueError(f"oracle: scheduled has shape {scheduled.shape}; expected {(m, MATURITY_DAYS)}")
    n7_before = np.zeros((m, MATURITY_DAYS))
    hist = np.zeros((m, MATURITY_DAYS))
    for j in range(MATURITY_DAYS):
        hist[:, j] = history[:, : max(0, 6 - j)].sum(axis=1) + scheduled[:, max(0, j - 6): j].sum(axis=1)
        n7_before[:, j] = hist[:, j] + sends[:, max(0, j - 6): min(j, 7)].sum(axis=1)
    hist = hist + scheduled  # through day j: organic buying (annoyance) counts the day's own pushes
    n7_through = n7_before + scheduled + np.pad(sends, ((0, 0), (0, MATURITY_DAYS - 7)))
    day_dates = [date + dt.timedelta(days=j) for j in range(MATURITY_DAYS)]
    p_org = np.stack([R.organic_order_probability(pop, calib, idx, d, n7_through[:, j])
                      for j, d in enumerate(day_dates)], axis=1)
    p_org_base = np.stack([R.organic_order_probability(pop, calib, idx, d, hist[:, j])
                           for j, d in enumerate(day_dates)], axis=1)
    p_conv = R.convert_probability(pop, calib, idx, vp, R.discount(kind, value, cap, aov))
    seen = np.zeros(m)
    open_by_day = np.zeros((m, 7))
    p_stay_by = np.ones((m, 7))
    for j in range(7):
        on = sends[:, j] == 1
        p_stay_by[:, j] = p_stay
        if on.any():
            n7 = n7_before[:, j]
            p_open = R.open_probability(pop, calib, idx, hour, np.full(m, day_dates[j].weekday()), tone, vp,
                                        has_coupon, n7) * deliverable * p_stay
            p_open = np.where(on, p_open, 0.0)
            q_attr = 1 - np.prod(1 - p_org[:, j: j + ATTRIBUTION_DAYS + 1], axis=1)
            opens += p_open
            open_by_day[:, j] = p_open
            conversions += p_open * p_conv
            no_attr *= 1 - p_open * (p_conv + (1 - p_conv) * q_attr)
            p_stay = p_stay * np.where(on, 1 - deliverable * R.optout_probability(pop, calib, idx, n7, tone), 1.0)
            seen = 1 - (1 - seen) * (1 - p_open)
        p_open_by[:, j] = seen
    p_open_by[:, 7:] = seen[:, None]

    # the wallet: each delivered push (re)loads the coupon for 7 days; the first order that uses it empties it
    opened_share = R.REDEEM_IF_NOT_OPENED + (R.REDEEM_IF_OPENED - R.REDEEM_IF_NOT_OPENED) * p_open_by
    driven_due = np.zeros((m, MATURITY_DAYS))
    for j in range(7):
        for lag, p_lag in enumerate(R.CONVERSION_DELAY_P):
            driven_due[:, j + lag] += open_by_day[:, j] * p_conv * p_lag
    avail = np.zeros(m)
    expiry = np.full(m, -1)
    cannibal = np.zeros(m)
    driven_redeemed = np.zeros(m)
    for j in range(MATURITY_DAYS):
        if j < 7:
            on = (sends[:, j] == 1) & has_coupon
            avail = np.where(on, deliverable * p_stay_by[:, j] + (1 - deliverable * p_stay_by[:, j]) * avail,
                             avail)
            expiry = np.where(on, j + 6, expiry)
        avail = np.where(j <= expiry, avail, 0.0)
        driven = np.minimum(driven_due[:, j], avail)
        organic = avail * p_org[:, j] * opened_share[:, j] * (1 - driven_due[:, j])
        driven_redeemed += driven
        cannibal += organic
        avail = np.clip(avail - driven - organic, 0.0, 1.0)
    cannibal_cost = cannibal * disc
    driven_cost = driven_redeemed * disc
    margin = calib.take_rate * aov * (p_org.sum(axis=1) + conversions)
    baseline = calib.take_rate * aov * p_org_base.sum(axis=1)
    net = margin - cannibal_cost - driven_cost
    expected_sends = deliverable * sends.sum(axis=1)
    return pd.DataFrame({
        "user_id": pop.user_id[idx],
        "expected_sends": expected_sends,
        "expected_opens": opens,
        "open_rate": np.divide(opens, expected_sends, out=np.zeros(m), where=expected_sends > 0),
        "p_conversion": 1 - no_attr,
        "expected_coupon_cost": cannibal_cost + driven_cost,
        "net_revenue": net,
        "baseline_net_revenue": baseline,
        "incremental_net_revenue": net - baseline,
        "p_opt_out": 1 - p_stay,
    })
