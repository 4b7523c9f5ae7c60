"""The evaluation of a country (and of all countries pooled) as plain data: what the report, the JSON summary and
the Dagster metadata show.

Rows are decisions from the decision log. Net revenue per user is the user's take-rate margin over the
decision's window minus coupon costs: holdout users count too, so the difference between a group and the
holdout is the incremental value of being pushed (its ATE), with errors clustered by user. Everything is "to
date": a decision whose 10-day window is still open counts with what it has earned so far. Groups are
randomized within every campaign and day, so open windows are the same in every group and the differences stay
unbiased; a run's last days add little but noise. The same figures over closed windows only (`is_mature`) are
reported as `mature_*`.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from pushgrowth.domain import COUNTRIES, GROUPS, USD_PER_UNIT
from pushgrowth.evaluation import stats

STRATA = stats.STRATA
"""Every bandit - BAU and group - holdout comparison of the report is made within campaign and bandit share
(see `stats`): groups are drawn with each campaign's shares, and a pilot's 10% bandit share would otherwise mix
the campaigns' levels into the groups' difference."""


def decisions_frame(log: pd.DataFrame) -> pd.DataFrame:
    """A country's decision log (the dbt mart `decision_log`) in the column names of `evaluation.stats`."""
    if not len(log):
        return log
    frame = log.rename(columns={"assignment_group": "group", "reward_net_revenue": "net_revenue"})
    frame["pushes_delivered"] = frame["pushes_delivered"].astype(float)
    frame["opens"] = frame["opens"].astype(float)
    frame["converted"] = frame["converted"].astype(bool)
    frame["is_mature"] = frame["is_mature"].astype(bool)
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    frame["share_bandit"] = pd.to_numeric(frame["share_bandit"], errors="coerce").fillna(-1.0)  # -1: not logged
    return frame


def _interval(i: stats.Interval) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in i.to_dict().items()}


def _clean(value):
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def groups(frame: pd.DataFrame) -> dict:
    """Per group: decisions, sends, opens, open rate, conversions and net revenue per user (to date), and net
    revenue per user over closed windows only."""
    out = {}
    all_rows = stats.group_summary(frame).set_index("group") if len(frame) else pd.DataFrame()
    mature = frame[frame["is_mature"]] if len(frame) else frame
    settled = stats.group_summary(mature).set_index("group") if len(mature) else pd.DataFrame()
    for group in GROUPS:
        row = all_rows.loc[group] if group in all_rows.index else None
        m = settled.loc[group] if group in settled.index else None
        out[group] = {
            "decisions": int(row["decisions"]) if row is not None else 0,
            "users": int(row["users"]) if row is not None else 0,
            "sends": int(row["sends"]) if row is not None else 0,
            "opens": int(row["opens"]) if row is not None else 0,
            "open_rate": float(row["open_rate"]) if row is not None else None,
            "conversions": int(row["conversions"]) if row is not None else 0,
            "conversion_rate": float(row["conversions"] / row["decisions"]) if row is not None and row["decisions"]
            else None,
            "net_revenue_per_user": float(row["net_revenue_per_user"]) if row is not None else None,
            "mature_decisions": int(m["decisions"]) if m is not None else 0,
            "mature_net_revenue_per_user": float(m["net_revenue_per_user"]) if m is not None else None,
        }
    return out


def country_summary(frame: pd.DataFrame, oracle: pd.DataFrame | None = None, alpha: float = 0.05) -> dict:
    """Everything the report says about one country (`frame` from `decisions_frame`)."""
    if not len(frame):
        return {"decisions": 0}
    mature = frame[frame["is_mature"]]
    lifts = {"open_rate": stats.lift(frame, "bandit", "bau", "open_rate", alpha, STRATA),
             "net_revenue_per_user": stats.lift(frame, "bandit", "bau", "net_revenue", alpha, STRATA)}
    truth = {**oracle_summary(oracle), **expected_open_rate(oracle, frame)} if oracle is not None and len(oracle) \
        else None
    expected = _expected_lifts(oracle, frame, alpha) if truth is not None else {}
    out = {
        "decisions": int(len(frame)),
        "first_decision": min(frame["date"]).isoformat(), "last_decision": max(frame["date"]).isoformat(),
        "currency": COUNTRIES[frame["country"].iloc[0]].currency,
        "groups": groups(frame),
        "ate_vs_holdout": {g: _interval(stats.ate_vs_holdout(frame, g, "net_revenue", alpha, STRATA)) for g in ("bau", "bandit")},
        "lift_bandit_vs_bau": {key: _interval(interval) for key, interval in lifts.items()},
        "sensitivity": {key: stats.sensitivity(interval, expected.get(key), alpha)
                        for key, interval in lifts.items()},
        "mature_ate_vs_holdout": {g: _interval(stats.ate_vs_holdout(mature, g, "net_revenue", alpha, STRATA))
                                  for g in ("bau", "bandit")},
        "since_first_model": since_first_model(frame, alpha),
        "by_week": by_week(frame),
        "by_bandit_share": by_share(frame, alpha),
        "campaigns": campaigns(frame),
    }
    if truth is not None:
        out["oracle"] = truth
    return _clean(out)


def _expected_lifts(oracle: pd.DataFrame, frame: pd.DataFrame, alpha: float) -> dict[str, float]:
    """The bandit - BAU differences the oracle expects, by the very estimator of `lift_bandit_vs_bau`: the
    plans' expected opens (the oracle's open rate x the pushes delivered) and expected incremental net revenue
    in place of the realized ones, within the same strata."""
    rows = frame.drop(columns=["opens", "net_revenue"]).merge(
        oracle[["trace_id", "open_rate", "incremental_net_revenue"]], on="trace_id")
    rows = rows[rows["group"].isin(["bandit", "bau"])]
    out = {}
    opened = rows[rows["open_rate"].notna()]
    estimate = stats.lift(opened.assign(opens=opened["open_rate"] * opened["pushes_delivered"]),
                          "bandit", "bau", "open_rate", alpha, STRATA)
    if estimate.available:
        out["open_rate"] = estimate.estimate
    valued = rows[rows["incremental_net_revenue"].notna()]
    estimate = stats.lift(valued.assign(net_revenue=valued["incremental_net_revenue"]), "bandit", "bau",
                          "net_revenue", alpha, STRATA)
    if estimate.available:
        out["net_revenue_per_user"] = estimate.estimate
    return out


def expected_open_rate(oracle: pd.DataFrame, frame: pd.DataFrame) -> dict:
    """Per group, the oracle's open rate of the chosen plans per delivered push (the plans' expected opens over
    the pushes delivered), and the bandit's lift over BAU on it: the open-rate lift without the noise of which
    users happened to open, so a run's realized lift can be read against what its plans were worth."""
    rows = oracle[["trace_id", "open_rate"]].merge(frame[["trace_id", "group", "pushes_delivered"]], on="trace_id")
    rows = rows[rows["open_rate"].notna() & (rows["pushes_delivered"] > 0)]
    rate: dict[str, float | None] = {}
    for g in ("bau", "bandit"):
        sel = rows[rows["group"] == g]
        sends = float(sel["pushes_delivered"].sum())
        rate[g] = float((sel["open_rate"] * sel["pushes_delivered"]).sum() / sends) if sends > 0 else None
    lift = rate["bandit"] - rate["bau"] if rate["bandit"] is not None and rate["bau"] is not None else None
    return {"open_rate": rate, "open_rate_lift_bandit_vs_bau": lift}


def since_first_model(frame: pd.DataFrame, alpha: float = 0.05) -> dict:
    """Bandit vs BAU over the decision dates from the first one a trained model served the bandit group.

    Both groups on the same dates, so the comparison stays randomized; it leaves out the cold-start days, when
    the bandit group explores around BAU without a model, and shows what the bandit does once it has learned.
    The whole-run figures (`lift_bandit_vs_bau`) include those days.
    """
    if "policy" not in frame.columns:
        return {"first_date": None}
    served = frame.loc[(frame["group"] == "bandit") & (frame["policy"] == "bandit"), "date"]
    if not len(served):
        return {"first_date": None}
    first = min(served)
    part = frame[frame["date"] >= first]
    return {"first_date": first.isoformat(), "decisions": int(len(part)),
            "open_rate": _interval(stats.lift(part, "bandit", "bau", "open_rate", alpha, STRATA)),
            "net_revenue_per_user": _interval(stats.lift(part, "bandit", "bau", "net_revenue", alpha, STRATA))}


def _week(dates: pd.Series, start: dt.date) -> np.ndarray:
    return ((pd.to_datetime(dates) - pd.Timestamp(start)).dt.days // 7 + 1).to_numpy()


def by_week(frame: pd.DataFrame) -> list[dict]:
    """Open rate per group and week of decision (week 1 starts on the first decision date)."""
    start = min(frame["date"])
    frame = frame.assign(week=_week(frame["date"], start))
    rows = []
    for week, part in frame.groupby("week", sort=True):
        g = groups(part)
        rows.append({"week": int(week), "start": (start + dt.timedelta(days=7 * (int(week) - 1))).isoformat(),
                     **{f"{name}_open_rate": g[name]["open_rate"] for name in ("bau", "bandit")},
                     **{f"{name}_sends": g[name]["sends"] for name in ("bau", "bandit")}})
    return rows


def by_share(frame: pd.DataFrame, alpha: float = 0.05) -> list[dict]:
    """Results per bandit share of the campaigns (the rollout from a pilot to 100%): bandit vs BAU per share."""
    if "share_bandit" not in frame.columns:
        return []
    rows = []
    for share, part in frame.groupby("share_bandit", sort=True):
        rows.append({"bandit_share": float(share), "campaigns": int(part["campaign_id"].nunique()),
                     "decisions": int(len(part)),
                     "open_rate_lift": _interval(stats.lift(part, "bandit", "bau", "open_rate", alpha, STRATA)),
                     "net_revenue_lift": _interval(stats.lift(part, "bandit", "bau", "net_revenue", alpha, STRATA))})
    return rows


def campaigns(frame: pd.DataFrame) -> list[dict]:
    """Per campaign and group: decisions, sends, open rate and net revenue per user."""
    rows = []
    for (cid, group), part in frame.groupby(["campaign_id", "group"], sort=True):
        sends = float(part["pushes_delivered"].sum())
        rows.append({"campaign_id": cid, "group": group, "decisions": int(len(part)), "sends": int(sends),
                     "open_rate": float(part["opens"].sum() / sends) if sends else None,
                     "net_revenue_per_user": float(part["net_revenue"].mean())})
    return rows


def oracle_summary(oracle: pd.DataFrame) -> dict:
    """The World's view: value per group and regret per week, normalized per objective.

    Values are the oracle's expected reward of the chosen plans on each campaign's objective, divided by the
    mean best value of that objective in the country, so 1.0 is "the best plan for every user" and objectives
    add up; holdout is 0 (nothing sent, nothing caused). Regret = normalized (best - chosen).
    """
    planned = oracle[oracle["group"] != "holdout"]
    scale = planned.groupby("objective")["best"].mean().clip(lower=1e-12)
    norm = oracle["objective"].map(scale).fillna(1.0)
    oracle = oracle.assign(value_n=oracle["value"] / norm, regret_n=(oracle["best"] - oracle["value"]) / norm)
    start = min(pd.to_datetime(oracle["date"]).dt.date)
    oracle = oracle.assign(week=_week(oracle["date"], start))
    value = {g: float(oracle.loc[oracle["group"] == g, "value_n"].mean()) if (oracle["group"] == g).any() else None
             for g in GROUPS}
    weeks = []
    for week, part in oracle.groupby("week", sort=True):
        row = {"week": int(week), "start": (start + dt.timedelta(days=7 * (int(week) - 1))).isoformat()}
        for g in ("bau", "bandit"):
            sel = part[part["group"] == g]
            row[g] = float(sel["regret_n"].mean()) if len(sel) else None
            row[f"{g}_value"] = float(sel["value_n"].mean()) if len(sel) else None
        weeks.append(row)
    return {"value": value, "regret_per_week": weeks,
            "incremental_net_revenue_per_decision": {
                g: float(oracle.loc[oracle["group"] == g, "incremental_net_revenue"].mean())
                if (oracle["group"] == g).any() else None for g in GROUPS}}


def pooled(frames: dict[str, pd.DataFrame], alpha: float = 0.05,
           oracles: dict[str, pd.DataFrame] | None = None) -> dict:
    """Net revenue per user pooled over countries in USD (fixed reporting rates), within country, campaign and
    bandit share (fixed effects, see `stats`).

    With the oracle's frames (simulation), `sensitivity.difference_bandit_minus_bau` also has the difference the
    oracle expects: the same regression on each decision's expected incremental net revenue (holdout 0), so the
    countries weigh in it as they do in the realized difference."""
    parts = [f for f in frames.values() if len(f)]
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if not len(rows):
        return {}
    fx = {code: USD_PER_UNIT[COUNTRIES[code].currency] for code in rows["country"].unique()}
    result = stats.pooled_difference(rows, fx, "bandit", "bau", "holdout", "net_revenue", alpha, STRATA)
    return _clean({"currency": "USD", "fx_usd_per_unit": fx, "ate_vs_holdout": {
        "bandit": _interval(result["treatment_ate"]), "bau": _interval(result["control_ate"])},
        "difference_bandit_minus_bau": _interval(result["difference"]),
        "sensitivity": {"difference_bandit_minus_bau": stats.sensitivity(
            result["difference"], _expected_pooled(oracles, rows, fx, alpha), alpha)}})


def _expected_pooled(oracles: dict[str, pd.DataFrame] | None, decisions: pd.DataFrame, fx: dict[str, float],
                     alpha: float) -> float | None:
    """The pooled bandit - BAU difference in USD on the oracle's expected incremental net revenue (the strata of
    each decision from `decisions`)."""
    parts = [o for code, o in (oracles or {}).items() if len(o) and code in fx]
    if not parts:
        return None
    truth = pd.concat(parts, ignore_index=True)
    truth = truth[truth["incremental_net_revenue"].notna()]
    truth = truth.assign(net_revenue=truth["incremental_net_revenue"].astype(float))[
        ["trace_id", "country", "group", "user_id", "net_revenue"]].merge(
        decisions[["trace_id", *STRATA]], on="trace_id")
    estimate = stats.pooled_difference(truth, fx, "bandit", "bau", "holdout", "net_revenue", alpha, STRATA)["difference"]
    return estimate.estimate if estimate.available else None

