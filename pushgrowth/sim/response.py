"""How users respond to pushes and how they buy on their own: the probabilities behind every draw.

The day simulation draws from these functions and the oracle takes their expectations, so the two agree by
construction. All functions are vectorized over user indices `idx` into a `Population`.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from pushgrowth.sim.config import CountryCalibration
from pushgrowth.sim.population import Population

DELIVERY_P = 0.97
"""Share of pushes to opted-in users that reach a device (the rest fail with invalid_token)."""
REDEEM_IF_OPENED = 0.70
REDEEM_IF_NOT_OPENED = 0.15
"""Chance that an organic order uses a coupon in the wallet: users who saw the push remember it."""
CONVERSION_DELAY_P = np.array([0.50, 0.25, 0.15, 0.10])
"""Days between an open and the order it causes (0 to 3, the attribution window)."""
MAX_ORGANIC_P = 0.6
FATIGUE = 0.45
ANNOYANCE = 0.15
WEEKDAY_DEMAND = np.array([1.02, 1.0, 1.0, 1.0, 0.96, 0.92, 1.05])
TONE_URGENCY = 0


def season(calib: CountryCalibration, date: dt.date) -> float:
    """Demand multiplier of a local date: paydays and weekdays."""
    payday = calib.payday_boost if date.day in calib.payday_days else 1.0
    return payday * float(WEEKDAY_DEMAND[date.weekday()])


def excess_pushes(pop: Population, idx: np.ndarray, n7: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, n7 - pop.tolerance[idx])


def open_probability(
    pop: Population,
    calib: CountryCalibration,
    idx: np.ndarray,
    hour: np.ndarray,
    weekday: np.ndarray,
    tone: np.ndarray,
    vp: np.ndarray,
    has_coupon: np.ndarray,
    n7: np.ndarray,
) -> np.ndarray:
    """P(open) of a delivered push; `n7` counts the user's pushes in the 7 days before it (fatigue)."""
    hour_match = pop.hour_amp[idx] * np.cos(2 * np.pi * (hour - pop.pref_hour[idx]) / 24.0)
    logit = (
        calib.open_logit
        + pop.responsiveness[idx]
        + hour_match
        + 0.8 * pop.weekday_aff[idx, weekday]
        + pop.tone_aff[idx, tone]
        + 0.5 * pop.vp_aff[idx, vp]
        + 0.35 * has_coupon
        + 0.25 * np.clip(pop.engagement[idx], -4.0, 1.0)
        - FATIGUE * excess_pushes(pop, idx, n7)
    )
    return 1.0 / (1.0 + np.exp(-logit))


def discount(kind: np.ndarray, value: np.ndarray, cap: np.ndarray, gmv: np.ndarray) -> np.ndarray:
    """Discount of a coupon on an order of `gmv`: kind 1 is an amount, kind 2 a percentage capped at `cap`."""
    amount = np.minimum(value, 0.9 * gmv)
    capped = np.where(cap > 0, cap, np.inf)
    percent = np.minimum(value / 100.0 * gmv, capped)
    return np.where(kind == 1, amount, np.where(kind == 2, percent, 0.0))


def convert_probability(
    pop: Population,
    calib: CountryCalibration,
    idx: np.ndarray,
    vp: np.ndarray,
    expected_discount: np.ndarray,
) -> np.ndarray:
    """P(an opened push causes an order): value proposition affinity and coupon elasticity drive it."""
    logit = (
        calib.convert_logit
        + pop.vp_aff[idx, vp]
        + 4.0 * pop.elasticity[idx] * expected_discount / pop.aov[idx]
        + 0.35 * np.clip(pop.engagement[idx], -4.0, 1.0)
        + 0.3 * np.log(pop.order_rate[idx] / calib.daily_order_rate)
    )
    return 1.0 / (1.0 + np.exp(-logit))


def optout_probability(
    pop: Population, calib: CountryCalibration, idx: np.ndarray, n7: np.ndarray, tone: np.ndarray
) -> np.ndarray:
    """P(the user turns pushes off after this one): grows fast beyond the user's tolerance."""
    p = (
        calib.optout_rate
        * pop.optout_sens[idx]
        * np.exp(0.6 * excess_pushes(pop, idx, n7 + 1))
        * np.where(tone == TONE_URGENCY, 1.5, 1.0)
    )
    return np.minimum(p, 0.3)


def organic_order_probability(
    pop: Population, calib: CountryCalibration, idx: np.ndarray, date: dt.date, n7: np.ndarray
) -> np.ndarray:
    """P(an order today without a push), lowered when the user is over-messaged (annoyance)."""
    p = (
        pop.order_rate[idx]
        * np.exp(pop.engagement[idx])
        * season(calib, date)
        * np.exp(0.3 * pop.weekday_aff[idx, date.weekday()])
        * np.exp(-ANNOYANCE * excess_pushes(pop, idx, n7))
    )
    return np.minimum(p, MAX_ORGANIC_P)
