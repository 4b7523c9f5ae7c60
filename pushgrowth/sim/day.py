"""One local day of one country: deliver the pushes due, let users respond, buy, browse and sign up.

Order of events within the day: engagement drifts; pushes due today are delivered (fatigue counts the user's
pushes of the previous six days and earlier today); opens, conversions (some delayed by up to three days) and
opt-outs are drawn; then organic and push-driven orders happen and use coupons from the wallet; sessions follow
activity; new users sign up. The result is the day's raw extracts as Arrow tables.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from pushgrowth.domain import CATEGORIES, COUPON_KINDS, PLATFORMS, TONES, VALUE_PROPOSITIONS
from pushgrowth.landing.contract import TABLES
from pushgrowth.sim import response as R
from pushgrowth.sim.config import CountryCalibration
from pushgrowth.sim.population import ACTIVITY_DECAY, FIRST_NAMES, NO_DAY, day_index, generate
from pushgrowth.sim.state import PENDING_COLUMNS, REF_COLUMNS, CountryState, empty_frame, timestamps

TONE_CODE = {t: i for i, t in enumerate(TONES)}
VP_CODE = {v: i for i, v in enumerate(VALUE_PROPOSITIONS)}
KIND_CODE = {k: i for i, k in enumerate(COUPON_KINDS)}
SESSIONS_NO, ORDERS_NO, SENDS_NO, EVENTS_NO, REDEMPTIONS_NO = 1, 2, 3, 4, 5


def _table(name: str, columns: dict[str, object]) -> pa.Table:
    schema = TABLES[name].schema
    arrays = [
        col.cast(f.type) if isinstance(col := columns[f.name], pa.Array) else pa.array(col, type=f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _labels(codes: np.ndarray, labels: tuple[str, ...] | list[str]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                          pa.array(list(labels))).cast(pa.string())


def simulate_country_day(
    state: CountryState, calib: CountryCalibration, date: dt.date, rng: np.random.Generator
) -> dict[str, pa.Table]:
    pop, t = state.pop, day_index(date)
    _drift_engagement(state, rng)
    pop.push_ring[:, t % 7] = 0
    sends, events, opt_outs = _deliver(state, calib, date, rng)
    orders, redemptions = _orders(state, calib, date, rng)
    opened_idx = state.user_index(np.asarray(events["user_id"], dtype=np.int64))
    sessions = _sessions(state, date, rng, np.asarray(orders.pop("_idx")), opened_idx)
    _signups(state, calib, date, rng)
    return {
        "users": _users_snapshot(state, date),
        "sessions": sessions,
        "orders": _table("orders", orders),
        "push_sends": _table("push_sends", sends),
        "push_events": _table("push_events", events),
        "coupon_redemptions": _table("coupon_redemptions", redemptions),
        "opt_outs": _table("opt_outs", opt_outs),
    }


def _drift_engagement(state: CountryState, rng: np.random.Generator) -> None:
    pop = state.pop
    n = pop.n
    lapse = rng.random(n) < 0.003
    recover = (rng.random(n) < 0.002) & (pop.mu < -0.5)
    pop.mu = np.where(lapse, np.maximum(pop.mu - 2.0, -6.0), np.where(recover, 0.0, pop.mu)).astype(np.float32)
    pop.engagement = (pop.mu + 0.9 * (pop.engagement - pop.mu) + rng.normal(0, 0.15, n)).astype(np.float32)


def _deliver(
    state: CountryState, calib: CountryCalibration, date: dt.date, rng: np.random.Generator
) -> tuple[dict, dict, dict]:
    pop, t = state.pop, day_index(date)
    q = state.queue
    send_day = (q["send_date"].to_numpy().astype("datetime64[D]").astype(np.int64)) if len(q) else np.zeros(0)
    due = q[send_day <= t].sort_values(["send_hour_local", "idempotency_key"], kind="stable")
    state.queue = q[send_day > t].reset_index(drop=True)
    n = len(due)
    state.processed_keys.update(due["idempotency_key"].tolist())
    idx = state.user_index(due["user_id"].to_numpy(np.int64))
    known = idx >= 0
    safe = np.where(known, idx, 0)
    expired = due["send_date"].to_numpy().astype("datetime64[D]").astype(np.int64) < t
    opted = known & pop.push_opt_in[safe]
    token_ok = rng.random(n) < R.DELIVERY_P
    delivered = known & ~expired & opted & token_ok
    reason = np.where(~known, "unknown_user", np.where(expired, "expired", np.where(
        ~opted, "not_opted_in", np.where(~token_ok, "invalid_token", None))))
    hour = due["send_hour_local"].to_numpy(np.float64) + rng.integers(0, 15, n) / 60.0
    send_ids = state.ids(t, SENDS_NO, n)

    d_idx = idx[delivered]
    order = np.lexsort((hour[delivered], d_idx))
    rank = np.zeros(len(d_idx), dtype=np.int64)
    if len(d_idx):
        sorted_idx = d_idx[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_idx)) + 1]
        run = np.arange(len(sorted_idx)) - np.repeat(starts, np.diff(np.r_[starts, len(sorted_idx)]))
        rank[order] = run
    n7 = pop.pushes_last_7d()[d_idx] + rank
    np.add.at(pop.push_ring[:, t % 7], d_idx, 1)

    dd = due[delivered]
    tone = dd["tone"].map(TONE_CODE).to_numpy(np.int64)
    vp = dd["value_proposition"].map(VP_CODE).to_numpy(np.int64)
    kind = dd["coupon_kind"].map(KIND_CODE).fillna(0).to_numpy(np.int64)
    value = dd["coupon_value"].fillna(0).to_numpy(np.float64)
    cap = dd["coupon_cap"].fillna(0).to_numpy(np.float64)
    has_coupon = (kind > 0) & (value > 0)
    p_open = R.open_probability(pop, calib, d_idx, hour[delivered], np.full(len(d_idx), date.weekday()),
                                tone, vp, has_coupon, n7)
    opened = rng.random(len(d_idx)) < p_open

    # coupons go to the wallet (the latest push wins); opening the push makes the user aware of it
    ref = np.full(len(d_idx), -1, dtype=np.int64)
    if has_coupon.any():
        new_refs = dd.loc[has_coupon, list(REF_COLUMNS)].astype(REF_COLUMNS)
        ref[has_coupon] = len(state.refs) + np.arange(int(has_coupon.sum()))
        state.refs = pd.concat([state.refs, new_refs], ignore_index=True)
        w = d_idx[has_coupon]
        still_held = (pop.wallet_value[w] > 0) & (pop.wallet_expiry[w] >= t)
        pop.wallet_opened[w] = opened[has_coupon] | (pop.wallet_opened[w] & still_held)
        pop.wallet_value[w], pop.wallet_kind[w], pop.wallet_cap[w] = (
            value[has_coupon], kind[has_coupon], cap[has_coupon])
        pop.wallet_expiry[w] = t + 6
        pop.wallet_ref[w] = ref[has_coupon]

    open_hour = np.minimum(hour[delivered] + rng.exponential(0.4, len(d_idx)), 23.99)
    exp_disc = R.discount(kind, value, cap, pop.aov[d_idx].astype(np.float64))
    p_conv = R.convert_probability(pop, calib, d_idx, vp, exp_disc)
    converts = opened & (rng.random(len(d_idx)) < p_conv)
    delay = rng.choice(len(R.CONVERSION_DELAY_P), len(d_idx), p=R.CONVERSION_DELAY_P)
    conv_hour = np.where(delay == 0, np.minimum(open_hour + rng.uniform(0, 2, len(d_idx)), 23.99),
                         rng.uniform(8, 23.5, len(d_idx)))
    gmv = pop.aov[d_idx] * rng.lognormal(-0.08, 0.4, len(d_idx))
    new_pending = pd.DataFrame({"due_day": t + delay, "idx": d_idx, "hour": conv_hour, "gmv": gmv, "ref": ref})
    state.pending = pd.concat([state.pending, new_pending[converts].astype(PENDING_COLUMNS)], ignore_index=True)

    p_out = R.optout_probability(pop, calib, d_idx, n7, tone)
    out = rng.random(len(d_idx)) < p_out
    out_idx, first = np.unique(d_idx[out], return_index=True)
    pop.push_opt_in[out_idx] = False

    sent_utc, sent_local = timestamps(state, date, safe, hour)
    ev_utc, ev_local = timestamps(state, date, d_idx[opened], open_hour[opened])
    out_utc, _ = timestamps(state, date, out_idx, open_hour[out][first])
    sends = {
        "send_id": send_ids, "trace_id": due["trace_id"].tolist(),
        "idempotency_key": due["idempotency_key"].tolist(),
        "user_id": due["user_id"].to_numpy(np.int64), "campaign_id": due["campaign_id"].tolist(),
        "template_id": due["template_id"].tolist(),
        "coupon_code": due["coupon_code"].astype(object).where(due["coupon_code"].notna(), None).tolist(),
        "sent_at_utc": sent_utc, "sent_at_local": sent_local,
        "status": np.where(delivered, "delivered", "failed").tolist(), "failure_reason": reason.tolist(),
    }
    events = {
        "event_id": state.ids(t, EVENTS_NO, int(opened.sum())), "send_id": send_ids[delivered][opened],
        "trace_id": dd["trace_id"][opened].tolist(), "user_id": pop.user_id[d_idx[opened]],
        "event_type": ["open"] * int(opened.sum()), "event_at_utc": ev_utc, "event_at_local": ev_local,
    }
    opt_outs = {
        "user_id": pop.user_id[out_idx], "opted_out_at_utc": out_utc, "channel": ["push"] * len(out_idx),
        "trace_id": dd["trace_id"].to_numpy()[out][first].tolist(),
    }
    return sends, events, opt_outs


def _orders(
    state: CountryState, calib: CountryCalibration, date: dt.date, rng: np.random.Generator
) -> tuple[dict, dict]:
    pop, t, n = state.pop, day_index(date), state.pop.n
    all_idx = np.arange(n)
    p = R.organic_order_probability(pop, calib, all_idx, date, pop.pushes_last_7d())
    organic = np.flatnonzero(rng.random(n) < p)
    due = state.pending[state.pending["due_day"] <= t]
    state.pending = state.pending[state.pending["due_day"] > t].reset_index(drop=True)
    o_idx = np.r_[due["idx"].to_numpy(np.int64), organic]
    o_ref = np.r_[due["ref"].to_numpy(np.int64), np.full(len(organic), -1)]
    push_driven = np.r_[np.ones(len(due), bool), np.zeros(len(organic), bool)]
    o_hour = np.r_[due["hour"].to_numpy(np.float64), _activity_hours(pop, organic, rng)]
    o_gmv = np.r_[due["gmv"].to_numpy(np.float64), pop.aov[organic] * rng.lognormal(-0.08, 0.4, len(organic))]

    # one coupon per wallet: the first order of the day (push-driven ones first) that uses it clears it
    in_wallet = (pop.wallet_value[o_idx] > 0) & (pop.wallet_expiry[o_idx] >= t)
    own = push_driven & (o_ref >= 0) & (pop.wallet_ref[o_idx] == o_ref)
    chance = np.where(pop.wallet_opened[o_idx], R.REDEEM_IF_OPENED, R.REDEEM_IF_NOT_OPENED)
    wants = in_wallet & (own | (rng.random(len(o_idx)) < chance))
    _, first = np.unique(o_idx, return_index=True)
    is_first = np.zeros(len(o_idx), bool)
    is_first[first] = True
    redeem = wants & is_first
    r_idx = o_idx[redeem]
    disc = R.discount(pop.wallet_kind[r_idx], pop.wallet_value[r_idx].astype(np.float64),
                      pop.wallet_cap[r_idx].astype(np.float64), o_gmv[redeem])
    refs = state.refs.iloc[pop.wallet_ref[r_idx]] if len(r_idx) else state.refs.iloc[:0]
    pop.wallet_value[r_idx] = 0.0
    pop.wallet_ref[r_idx] = -1

    np.add.at(pop.lifetime_orders, o_idx, 1)
    np.add.at(pop.lifetime_gmv, o_idx, o_gmv)
    pop.last_order_day[o_idx] = t
    pop.engagement[o_idx] = np.minimum(pop.engagement[o_idx] + 0.2, 1.5)
    order_ids = state.ids(t, ORDERS_NO, len(o_idx))
    utc, local = timestamps(state, date, o_idx, o_hour)
    cat = np.where(rng.random(len(o_idx)) < 0.6, pop.category[o_idx], rng.integers(0, len(CATEGORIES), len(o_idx)))
    orders = {
        "order_id": order_ids, "user_id": pop.user_id[o_idx], "created_at_utc": utc, "created_at_local": local,
        "gmv": np.round(o_gmv, 2), "currency": [state.country.currency] * len(o_idx),
        "category": _labels(cat, CATEGORIES), "_idx": o_idx,
    }
    redemptions = {
        "redemption_id": state.ids(t, REDEMPTIONS_NO, len(r_idx)), "order_id": order_ids[redeem],
        "user_id": pop.user_id[r_idx], "trace_id": refs["trace_id"].tolist(),
        "campaign_id": refs["campaign_id"].tolist(),
        "coupon_code": refs["coupon_code"].fillna("").tolist(), "discount_amount": np.round(disc, 2),
        "redeemed_at_utc": utc[redeem], "country": [state.code] * len(r_idx),
    }
    return orders, redemptions


def _activity_hours(pop, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Local hours of activity: mostly around the user's preferred hour, some spread over the waking day."""
    near = np.mod(pop.pref_hour[idx] + rng.normal(0, 1.5, len(idx)), 24.0)
    return np.where(rng.random(len(idx)) < 0.6, near, rng.uniform(7, 24, len(idx))).astype(np.float64)


def _sessions(
    state: CountryState, date: dt.date, rng: np.random.Generator, buyers: np.ndarray, openers: np.ndarray
) -> pa.Table:
    pop, t, n = state.pop, day_index(date), state.pop.n
    lam = pop.session_rate * np.exp(pop.engagement) * np.exp(0.5 * pop.weekday_aff[:, date.weekday()])
    count = rng.poisson(np.minimum(lam, 20.0))
    active = np.zeros(n, bool)
    active[buyers] = True
    active[openers] = True
    count = np.where(active & (count == 0), 1, count)
    s_idx = np.repeat(np.arange(n), count)
    pop.last_session_day[count > 0] = t
    hours = _activity_hours(pop, s_idx, rng)
    _remember_activity(pop, s_idx, hours, date.weekday() >= 5)
    utc, local = timestamps(state, date, s_idx, hours)
    cat = np.where(rng.random(len(s_idx)) < 0.7, pop.category[s_idx], rng.integers(0, len(CATEGORIES), len(s_idx)))
    return _table("sessions", {
        "session_id": state.ids(t, SESSIONS_NO, len(s_idx)), "user_id": pop.user_id[s_idx],
        "started_at_utc": utc, "started_at_local": local,
        "platform": _labels(pop.platform[s_idx], PLATFORMS), "category": _labels(cat, CATEGORIES),
    })


def _remember_activity(pop, s_idx: np.ndarray, hours: np.ndarray, weekend: bool) -> None:
    """The CRM's activity summary: yesterday's weights decay, today's sessions add their hour and kind of day."""
    n = pop.n
    angle = hours * np.pi / 12
    for name in ("act_sin", "act_cos", "act_weekend", "act_total"):
        setattr(pop, name, (getattr(pop, name) * ACTIVITY_DECAY).astype(np.float32))
    pop.act_sin += np.bincount(s_idx, weights=np.sin(angle), minlength=n).astype(np.float32)
    pop.act_cos += np.bincount(s_idx, weights=np.cos(angle), minlength=n).astype(np.float32)
    counts = np.bincount(s_idx, minlength=n).astype(np.float32)
    pop.act_total += counts
    if weekend:
        pop.act_weekend += counts


def _signups(state: CountryState, calib: CountryCalibration, date: dt.date, rng: np.random.Generator) -> None:
    k = int(rng.poisson(state.pop.n * calib.signup_rate))
    if k == 0:
        return
    new = generate(rng, state.country, calib, k, date, state.next_seq, state.index, newcomers=True)
    new.last_session_day[:] = day_index(date)
    state.pop.extend(new)
    state.next_seq += k


def _users_snapshot(state: CountryState, date: dt.date) -> pa.Table:
    """The snapshot owns its data: Arrow would otherwise wrap the live state arrays without copying them."""
    pop, n = state.pop, state.pop.n
    epoch = np.datetime64("1970-01-01", "D")

    def dates(days: np.ndarray) -> pa.Array:
        return pa.array(epoch + days.astype("timedelta64[D]"), type=pa.date32(), mask=days == NO_DAY)

    regions = [r.code for r in state.country.regions]
    return _table("users", {
        "snapshot_date": pa.array(np.full(n, np.datetime64(date, "D")), type=pa.date32()),
        "user_id": pop.user_id.copy(), "country": pa.array([state.code]).take(np.zeros(n, dtype=np.int64)),
        "first_name": _labels(pop.first_name, FIRST_NAMES[state.country.language]),
        "signup_date": dates(pop.signup_day), "platform": _labels(pop.platform, PLATFORMS),
        "region": _labels(pop.region, regions), "timezone": _labels(pop.tz, state.country.timezones),
        "push_opt_in": pop.push_opt_in.copy(), "mp_user": pop.mp_user.copy(),
        "category_interest": _labels(pop.category, CATEGORIES),
        "lifetime_orders": pop.lifetime_orders.copy(), "lifetime_gmv": np.round(pop.lifetime_gmv, 2),
        "last_session_date": dates(pop.last_session_day), "last_order_date": dates(pop.last_order_day),
        **_activity_summary(pop),
    })


def _activity_summary(pop) -> dict[str, pa.Array]:
    """What the CRM reports: the mean hour and the weekend share of the user's weighted sessions (null if none)."""
    some = pop.act_total >= 0.5
    angle = np.arctan2(pop.act_sin.astype(np.float64), pop.act_cos.astype(np.float64))
    hour = np.mod(np.round(angle * 12 / np.pi, 3), 24.0)  # rounded first: 23.9996 is 0.0, never 24.0
    share = np.clip(np.divide(pop.act_weekend, pop.act_total, out=np.zeros(pop.n, np.float32), where=some), 0, 1)
    return {"usual_active_hour": pa.array(hour, type=pa.float64(), mask=~some),
            "weekend_activity_share": pa.array(np.round(share, 4), type=pa.float64(), mask=~some)}


__all__ = ["simulate_country_day", "empty_frame"]
