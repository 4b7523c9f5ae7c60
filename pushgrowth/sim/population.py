"""Users of one country as a struct of NumPy arrays: what the company sees and the hidden traits behind it.

Hidden traits make responses heterogeneous: each user has a preferred local hour and weekdays, affinities for
value propositions and tones, a coupon elasticity, a tolerance to frequency and a baseline purchase rate.
Engagement is a latent log-multiplier that drifts and lapses; the history before the start date is drawn from
the same process (geometric waiting times), so recency, and therefore lifecycle stages, emerge from behaviour.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

import numpy as np

from pushgrowth.domain import CATEGORIES, TONES, VALUE_PROPOSITIONS, Country
from pushgrowth.sim.config import CountryCalibration

EPOCH = dt.date(1970, 1, 1)
NO_DAY = np.int32(-(2**31) + 1)
"""Day index meaning 'never' (no session or order yet)."""

FIRST_NAMES = {
    "es": ("Sofía", "Valentina", "Camila", "Lucía", "Martina", "Julieta", "Florencia", "María", "Daniela",
           "Mariana", "Paula", "Carla", "Mateo", "Santiago", "Juan", "Lucas", "Tomás", "Diego", "Nicolás",
           "Martín", "Alejandro", "Carlos", "José", "Luis"),
    "pt": ("Ana", "Maria", "Juliana", "Beatriz", "Larissa", "Camila", "Fernanda", "Gabriela", "Letícia",
           "Mariana", "Aline", "Patrícia", "João", "Pedro", "Lucas", "Gabriel", "Rafael", "Mateus", "Gustavo",
           "Felipe", "Bruno", "Rodrigo", "Thiago", "Carlos"),
}
CATEGORY_WEIGHTS = np.array([0.16, 0.16, 0.14, 0.10, 0.08, 0.10, 0.06, 0.07, 0.07, 0.06])
HOUR_PEAKS = np.array([8.0, 12.5, 19.5, 22.0])
HOUR_PEAK_WEIGHTS = np.array([0.18, 0.24, 0.38, 0.20])
WEEKDAY_LOVER = np.array([0.25, 0.25, 0.25, 0.25, 0.10, -0.50, -0.60])
WEEKEND_LOVER = np.array([-0.30, -0.30, -0.30, -0.20, 0.20, 0.50, 0.60])
ENGAGEMENT_LEVELS = np.array([0.0, -1.0, -2.5, -5.0])
ENGAGEMENT_SHARES = np.array([0.55, 0.15, 0.15, 0.15])
VP = {v: i for i, v in enumerate(VALUE_PROPOSITIONS)}


def day_index(date: dt.date) -> int:
    return (date - EPOCH).days


@dataclass
class Population:
    """One row per user; arrays are aligned. Everything after `category` is hidden from the extracts."""

    user_id: np.ndarray
    first_name: np.ndarray
    signup_day: np.ndarray
    platform: np.ndarray
    region: np.ndarray
    tz: np.ndarray
    push_opt_in: np.ndarray
    mp_user: np.ndarray
    category: np.ndarray
    lifetime_orders: np.ndarray
    lifetime_gmv: np.ndarray
    last_session_day: np.ndarray
    last_order_day: np.ndarray
    # hidden traits
    pref_hour: np.ndarray
    hour_amp: np.ndarray
    weekday_aff: np.ndarray
    tone_aff: np.ndarray
    vp_aff: np.ndarray
    responsiveness: np.ndarray
    elasticity: np.ndarray
    tolerance: np.ndarray
    optout_sens: np.ndarray
    order_rate: np.ndarray
    session_rate: np.ndarray
    aov: np.ndarray
    mu: np.ndarray
    engagement: np.ndarray
    # the CRM's activity summary: exponentially weighted (~90 days) sums over sessions of the sine and cosine of
    # their local hour, of weekend sessions, and of all sessions
    act_sin: np.ndarray
    act_cos: np.ndarray
    act_weekend: np.ndarray
    act_total: np.ndarray
    # state: delivered pushes per day in a 7-day ring, and the latest coupon held
    push_ring: np.ndarray
    wallet_value: np.ndarray
    wallet_kind: np.ndarray
    wallet_cap: np.ndarray
    wallet_expiry: np.ndarray
    wallet_opened: np.ndarray
    wallet_ref: np.ndarray

    @property
    def n(self) -> int:
        return int(self.user_id.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def extend(self, other: Population) -> None:
        for name, arr in other.arrays().items():
            setattr(self, name, np.concatenate([getattr(self, name), arr]))

    def pushes_last_7d(self) -> np.ndarray:
        return self.push_ring.sum(axis=1, dtype=np.int16)


def _geometric_days(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Days back to the latest event of a daily Bernoulli(p) process (1 = yesterday)."""
    return rng.geometric(np.clip(p, 1e-9, 1.0)).astype(np.int64)


def generate(
    rng: np.random.Generator,
    country: Country,
    calib: CountryCalibration,
    n: int,
    today: dt.date,
    first_seq: int,
    country_index: int,
    newcomers: bool = False,
) -> Population:
    """Draw `n` users as of the start of `today`; `newcomers` draws users who sign up today."""
    t = day_index(today)
    if newcomers:
        age = np.zeros(n, dtype=np.int64)
    else:
        is_new = rng.random(n) < 0.06
        age = np.where(is_new, rng.integers(1, 31, n), 30 + rng.exponential(500.0, n).astype(np.int64))
        age = np.minimum(age, 3000)
    other = 1.0 - calib.android_share - calib.ios_share
    platform = rng.choice(3, n, p=[calib.android_share, calib.ios_share, other]).astype(np.int8)
    region_w = np.array([r.weight for r in country.regions])
    region = rng.choice(len(region_w), n, p=region_w / region_w.sum()).astype(np.int8)
    tz_names = country.timezones
    region_tz = np.array([tz_names.index(r.timezone) for r in country.regions], dtype=np.int8)
    push_opt_in = rng.random(n) < np.where(platform == 2, 0.12, calib.push_opt_in_app)
    mp_user = rng.random(n) < calib.mp_user_share
    category = rng.choice(len(CATEGORIES), n, p=CATEGORY_WEIGHTS).astype(np.int8)

    peak = rng.choice(len(HOUR_PEAKS), n, p=HOUR_PEAK_WEIGHTS)
    pref_hour = np.mod(HOUR_PEAKS[peak] + rng.normal(0, 1.0, n), 24.0)
    weekend_type = rng.random(n) < 0.4
    weekday_aff = np.where(weekend_type[:, None], WEEKEND_LOVER, WEEKDAY_LOVER) + rng.normal(0, 0.25, (n, 7))
    tone_aff = rng.normal(0, 0.55, (n, len(TONES)))
    vp_aff = rng.normal(0, 0.55, (n, len(VALUE_PROPOSITIONS)))
    vp_aff[:, VP["mp_cashback"]] += np.where(mp_user, 0.5, -0.4)

    order_rate = calib.daily_order_rate * rng.lognormal(-0.5, 1.0, n)
    aov = calib.aov * rng.lognormal(-0.18, 0.6, n)
    vp_aff[:, VP["installments"]] += 0.4 * np.log(aov / calib.aov)
    session_rate = calib.daily_sessions * (order_rate / calib.daily_order_rate) ** 0.6 * rng.lognormal(0, 0.4, n)
    elasticity = rng.lognormal(-0.4, 0.9, n) * (calib.daily_order_rate / order_rate) ** 0.25

    if newcomers:
        mu = rng.normal(0.3, 0.3, n)
    else:
        level = rng.choice(len(ENGAGEMENT_LEVELS), n, p=ENGAGEMENT_SHARES)
        mu = ENGAGEMENT_LEVELS[level] + rng.normal(0, 0.3, n)
        mu = np.where(age <= 30, np.maximum(mu, 0.0), mu)
    engagement = mu + rng.normal(0, 0.3, n)

    # history: the engagement level dropped `lapse` days ago (at signup for users who never lapsed)
    lapse = np.where(mu < -0.5, (rng.random(n) * age).astype(np.int64), age)
    last_order, orders = _history(rng, order_rate, mu, age, lapse)
    last_session, _ = _history(rng, 1 - np.exp(-session_rate), mu, age, lapse)
    last_session = np.where((last_order != NO_DAY) & (last_session == NO_DAY), last_order, last_session)
    lifetime_gmv = orders * aov * rng.lognormal(-0.08, 0.4, n)

    seq = np.arange(first_seq, first_seq + n, dtype=np.int64)
    history_days = np.zeros(n, dtype=np.int64) if newcomers else np.minimum(age, 3 * ACTIVITY_WINDOW)
    act = activity_history(rng, pref_hour, weekday_aff, session_rate * np.exp(np.minimum(mu, 1.0)), history_days)
    return Population(
        user_id=(country_index + 1) * 1_000_000_000 + seq,
        first_name=rng.integers(0, len(FIRST_NAMES[country.language]), n).astype(np.int16),
        signup_day=(t - age).astype(np.int32),
        platform=platform,
        region=region,
        tz=region_tz[region],
        push_opt_in=push_opt_in,
        mp_user=mp_user,
        category=category,
        lifetime_orders=orders.astype(np.int32),
        lifetime_gmv=lifetime_gmv.astype(np.float64),
        last_session_day=np.where(last_session == NO_DAY, NO_DAY, t - last_session).astype(np.int32),
        last_order_day=np.where(last_order == NO_DAY, NO_DAY, t - last_order).astype(np.int32),
        pref_hour=pref_hour.astype(np.float32),
        hour_amp=rng.uniform(0.2, 1.4, n).astype(np.float32),
        weekday_aff=weekday_aff.astype(np.float32),
        tone_aff=tone_aff.astype(np.float32),
        vp_aff=vp_aff.astype(np.float32),
        responsiveness=rng.normal(0, 0.6, n).astype(np.float32),
        elasticity=elasticity.astype(np.float32),
        tolerance=rng.gamma(3.0, 0.8, n).astype(np.float32),
        optout_sens=rng.lognormal(0, 0.6, n).astype(np.float32),
        order_rate=order_rate.astype(np.float32),
        session_rate=session_rate.astype(np.float32),
        aov=aov.astype(np.float32),
        mu=mu.astype(np.float32),
        engagement=engagement.astype(np.float32),
        act_sin=act[0], act_cos=act[1], act_weekend=act[2], act_total=act[3],
        push_ring=np.zeros((n, 7), dtype=np.uint8),
        wallet_value=np.zeros(n, dtype=np.float32),
        wallet_kind=np.zeros(n, dtype=np.int8),
        wallet_cap=np.zeros(n, dtype=np.float32),
        wallet_expiry=np.full(n, NO_DAY, dtype=np.int32),
        wallet_opened=np.zeros(n, dtype=bool),
        wallet_ref=np.full(n, -1, dtype=np.int64),
    )


ACTIVITY_WINDOW = 90
"""Days the CRM's activity summary effectively covers (a session's weight decays by e every 90 days)."""
ACTIVITY_DECAY = float(np.exp(-1.0 / ACTIVITY_WINDOW))
NEAR_SHARE, NEAR_SD = 0.6, 1.5
"""Sessions cluster around the preferred hour (60%, sd 1.5 h) or spread over the waking day (see day.py)."""


def activity_history(rng: np.random.Generator, pref_hour: np.ndarray, weekday_aff: np.ndarray,
                     daily_sessions: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, ...]:
    """The CRM's activity summary of the sessions before the start, drawn from the session process itself.

    Each day before the start weighs ACTIVITY_DECAY**age; the sums of the sine and cosine of the session hours
    are drawn as their mean plus normal noise of the right variance (drawing every past session would cost tens
    of millions of draws for a million users).
    """
    weights = (1 - ACTIVITY_DECAY ** days) / (1 - ACTIVITY_DECAY)
    count = rng.poisson(daily_sessions * weights).astype(np.float64)
    theta = pref_hour * np.pi / 12
    near = np.exp(-0.5 * (NEAR_SD * np.pi / 12) ** 2)
    spread = np.linspace(7, 24, 69) * np.pi / 12  # the waking-day part, uniform over 7-24h
    mean_c = NEAR_SHARE * near * np.cos(theta) + (1 - NEAR_SHARE) * np.cos(spread).mean()
    mean_s = NEAR_SHARE * near * np.sin(theta) + (1 - NEAR_SHARE) * np.sin(spread).mean()
    noise = np.sqrt(count * 0.5 * np.maximum(1 - mean_c**2 - mean_s**2, 0.05))
    act_cos = count * mean_c + rng.normal(0, 1, len(count)) * noise
    act_sin = count * mean_s + rng.normal(0, 1, len(count)) * noise
    day_w = np.exp(0.5 * weekday_aff)
    weekend = day_w[:, 5:].sum(axis=1) / day_w.sum(axis=1)
    act_weekend = rng.binomial(count.astype(np.int64), np.clip(weekend, 0, 1)).astype(np.float64)
    return (act_sin.astype(np.float32), act_cos.astype(np.float32), act_weekend.astype(np.float32),
            count.astype(np.float32))


def _history(
    rng: np.random.Generator, p: np.ndarray, mu: np.ndarray, age: np.ndarray, lapse: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Days since the latest event (NO_DAY if none since signup) and the count of events since signup."""
    p_now = np.clip(p * np.exp(mu), 0, 1)
    k_now = _geometric_days(rng, p_now)
    k_before = lapse + _geometric_days(rng, np.clip(p, 0, 1))
    last = np.where(k_now <= lapse, k_now, k_before)
    count = rng.poisson(p * (age - lapse) + p_now * lapse)
    has = last <= age
    count = np.where(has, np.maximum(count, 1), 0)
    return np.where(has, last, NO_DAY), count
