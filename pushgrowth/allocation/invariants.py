"""Invariants of a day's assignments and outbox, as plain functions (the Dagster checks wrap them).

Each check returns `(passed, details)`: `details["summary"]` says what was found and `details["violations"]` is
a Markdown table of the first offending rows, so a failed check names the rows a person must look at.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from pushgrowth import quality
from pushgrowth.allocation.assign import scheduled_pushes
from pushgrowth.allocation.windows import rolling_overflows
from pushgrowth.allocation.pacing import budget_states
from pushgrowth.campaigns import Catalog
from pushgrowth.domain import PLAN_DAYS

ASSIGNMENT_CHECKS = {
    "great_expectations": "Great Expectations suite expectations/daily_assignments.json: contract columns, keys, "
                          "one campaign per user and day, propensities in (0, 1], actions within their domains.",
    "propensities_exact": "Every bandit plan has a propensity in (0, 1]; holdout and BAU rows exactly 1.",
    "no_holdout_or_opted_out": "Holdout rows carry no plan; every planned user accepts pushes in the day's users "
                               "snapshot.",
    "within_caps": "Per user: at most one push a day, at most the country's weekly cap and each campaign's "
                   "weekly cap in every 7-day window the day's plans touch (pushes of the six days before and "
                   "plans in flight included).",
    "within_budget": "Per campaign and group: spend committed + coupons in flight + today's expected cost stays "
                     "within the month's budget.",
    "group_shares": "Per campaign, holdout / bau / bandit shares within 5 standard errors (+0.02) of the "
                    "catalog's.",
}
SHARE_TOLERANCE = 0.02


def _violations(frame: pd.DataFrame, limit: int = 10) -> str:
    return frame.head(limit).astype(str).to_markdown(index=False) if len(frame) else ""


def _result(bad: pd.DataFrame, ok_text: str, bad_text: str) -> tuple[bool, dict]:
    if len(bad):
        return False, {"summary": f"{len(bad)} {bad_text}", "violations": _violations(bad), "count": len(bad)}
    return True, {"summary": ok_text, "count": 0}


def check_assignments(d: pd.DataFrame, catalog: Catalog, country: str, data_date: dt.date, users: pd.DataFrame,
                      previous: pd.DataFrame, ledger: pd.DataFrame,
                      data_docs_dir: Path | None = None) -> dict[str, tuple[bool, dict]]:
    """Every check of ASSIGNMENT_CHECKS on the decisions `d` of `data_date + 1`, given the day's raw `users`,
    the decisions of the days before whose plans are in flight (`previous`), and the budget `ledger` the
    assignments were paced with."""
    date = data_date + dt.timedelta(days=1)
    out: dict[str, tuple[bool, dict]] = {}
    gx = quality.validate(d, "daily_assignments", data_docs_dir=data_docs_dir, run_name=f"{country} {date}")
    details = {"summary": gx.summary(), "violations": gx.markdown() or "", "rows": len(d)}
    if gx.data_docs is not None:
        details["data_docs"] = str(gx.data_docs)
    out["great_expectations"] = (gx.success, details)
    planned = d["frequency"].notna()
    bandit = d[(d["group"] == "bandit") & planned]
    bad = pd.concat([bandit[~bandit["propensity"].between(0, 1, inclusive="right")],
                     d[(d["group"] != "bandit") & (d["propensity"] != 1.0)]])
    out["propensities_exact"] = _result(bad[["trace_id", "group", "policy", "propensity"]],
                                        f"{len(bandit)} bandit plans, all with exact propensities",
                                        "rows with a wrong propensity")
    users = users[["user_id", "push_opt_in"]]
    plans = d[planned & (d["group"] != "holdout")].merge(users, on="user_id", how="left")
    bad = pd.concat([d[(d["group"] == "holdout") & planned][["trace_id", "user_id", "group"]],
                     plans[plans["push_opt_in"] != True][["trace_id", "user_id", "group"]]])  # noqa: E712
    out["no_holdout_or_opted_out"] = _result(bad, f"{len(plans)} plans, all to users who accept pushes",
                                             "holdout or opted-out rows with a plan")
    out["within_caps"] = _caps(previous, d, catalog, country, date)
    out["within_budget"] = _budget(ledger, d, catalog, country, date)
    out["group_shares"] = _shares(d, catalog)
    return out


def _caps(previous: pd.DataFrame, d: pd.DataFrame, catalog: Catalog, country: str, date: dt.date
          ) -> tuple[bool, dict]:
    new = d[d["frequency"].notna() & (d["group"] != "holdout")]
    since = date - dt.timedelta(days=PLAN_DAYS - 1)
    pushes = pd.concat([scheduled_pushes(previous, date, since=since),
                        scheduled_pushes(new.assign(date=pd.Timestamp(date)), date)], ignore_index=True)
    week = pushes[pushes["send_date"].between(pd.Timestamp(date), pd.Timestamp(date + dt.timedelta(days=6)))]
    per_day = week.groupby(["user_id", "send_date"]).size().rename("pushes").reset_index()
    over = window_problems(pushes, catalog, country, date, new["user_id"])
    over_campaign = new[new["frequency"].astype(float) > new["campaign_id"].map(catalog_caps(catalog))]
    bad = pd.concat([per_day[per_day["pushes"] > 1].assign(rule="one push a day"), over,
                     over_campaign[["user_id", "campaign_id", "frequency"]].assign(rule="campaign weekly cap")])
    return _result(bad, f"{len(week)} pushes in the plan week of {new['user_id'].nunique()} users within caps "
                        "over every 7-day window", "cap violations")


def catalog_caps(catalog: Catalog) -> pd.Series:
    """Campaign id -> its `frequency.weekly_cap`."""
    return pd.Series({c.id: c.frequency.weekly_cap for c in catalog.campaigns}, dtype="int64")


def window_problems(pushes: pd.DataFrame, catalog: Catalog, country: str, date: dt.date,
                    users: pd.Series | None = None) -> pd.DataFrame:
    """Windows of 7 days touching the week from `date` in which a user has more pushes than the country's cap, or
    more of one campaign than its weekly cap (`pushes`: user_id, campaign_id, send_date, one row per push; only
    `users` when given): user_id, campaign_id (for a campaign's cap), window_start, pushes, cap, rule."""
    since, last = date - dt.timedelta(days=PLAN_DAYS - 1), date + dt.timedelta(days=PLAN_DAYS - 1)
    if users is not None:
        pushes = pushes[pushes["user_id"].isin(users)]
    cap = catalog.policies[country].max_weekly_pushes
    out = [rolling_overflows(pushes, cap, ("user_id",), since, last).assign(rule=f"{cap} pushes in 7 days")]
    if "campaign_id" in pushes.columns:
        out.append(rolling_overflows(pushes, catalog_caps(catalog), ("user_id", "campaign_id"), since, last)
                   .assign(rule="campaign weekly cap in 7 days"))
    return pd.concat(out, ignore_index=True)


def _budget(ledger: pd.DataFrame, d: pd.DataFrame, catalog: Catalog, country: str, date: dt.date
            ) -> tuple[bool, dict]:
    states = budget_states(ledger, date, [c.id for c in catalog.active(date, country)])
    spend = d.groupby(["campaign_id", "group"])["expected_cost"].sum()
    rows = []
    for (cid, group), state in states.items():
        today = float(spend.get((cid, group), 0.0))
        rows.append({"campaign_id": cid, "group": group, "budget": state.budget, "committed": state.committed,
                     "in_flight": state.outstanding, "today": today,
                     "over": state.committed + state.outstanding + today - state.budget})
    table = pd.DataFrame(rows)
    # spend committed before today cannot be undone: only today's plans can break the budget
    bad = table[(table["today"] > 1e-9) & (table["over"] > 1e-6)] if len(table) else table
    return _result(bad.round(2), f"projected spend within budget for {len(table)} campaign groups",
                   "campaign groups whose plans would exceed the month's budget")


def _shares(d: pd.DataFrame, catalog: Catalog, min_rows: int = 200) -> tuple[bool, dict]:
    rows = []
    for cid, group in d.groupby("campaign_id"):
        if len(group) < min_rows or cid not in catalog.ids:
            continue
        shares = catalog.get(cid).shares
        for name in ("holdout", "bau", "bandit"):
            expected = getattr(shares, name)
            observed = float((group["group"] == name).mean())
            se = np.sqrt(max(expected * (1 - expected), 1e-9) / len(group))
            rows.append({"campaign_id": cid, "group": name, "expected": expected, "observed": round(observed, 4),
                         "n": len(group), "off": abs(observed - expected) > 5 * se + SHARE_TOLERANCE})
    table = pd.DataFrame(rows)
    bad = table[table["off"]] if len(table) else table
    return _result(bad, "group shares as in the catalog for "
                        f"{table['campaign_id'].nunique() if len(table) else 0} "
                        f"campaigns with at least {min_rows} decisions", "group shares off the catalog's")


def outbox_problems(outbox: pd.DataFrame, decisions: pd.DataFrame, users: pd.DataFrame,
                    catalog: Catalog | None = None, earlier: pd.DataFrame | None = None,
                    date: dt.date | None = None) -> list[str]:
    """Problems that must stop an outbox before delivery (empty when it may go).

    With the `catalog`, the outbox's first send `date` and the `earlier` outboxes (rows of the twelve plan dates
    before, at least user_id, campaign_id and send_date), the caps are checked over every 7-day window that a
    push of this outbox falls in."""
    problems = []
    if outbox["idempotency_key"].duplicated().any():
        keys = outbox.loc[outbox["idempotency_key"].duplicated(), "idempotency_key"].head(3).tolist()
        problems.append(f"duplicate idempotency keys: {keys}")
    holdout = set(decisions.loc[decisions["group"] == "holdout", "trace_id"])
    if outbox["trace_id"].isin(holdout).any():
        problems.append("holdout traces in the outbox: "
                        f"{outbox.loc[outbox['trace_id'].isin(holdout), 'trace_id'].head(3).tolist()}")
    opted = users.set_index("user_id")["push_opt_in"]
    off = outbox[~outbox["user_id"].map(opted).fillna(False).astype(bool)]
    if len(off):
        problems.append(f"pushes to users who do not accept pushes: {off['user_id'].head(3).tolist()}")
    columns = ["user_id", "campaign_id", "send_date"]
    pushes = pd.concat([outbox[columns], *([earlier[columns]] if earlier is not None and len(earlier) else [])],
                       ignore_index=True)
    pushes = pushes[pushes["user_id"].isin(outbox["user_id"])]
    if len(outbox):
        ahead = pushes[pushes["send_date"] >= outbox["send_date"].min()]
        per_day = ahead.groupby(["user_id", "send_date"]).size()
        twice = per_day[per_day > 1]
        if len(twice):
            shown = ", ".join(f"user {u} on {pd.Timestamp(d).date()}" for u, d in twice.index[:3])
            problems.append(f"more than one push to a user on one day: {len(twice)} cases, e.g. {shown}")
    if catalog is not None and date is not None and len(outbox):
        over = window_problems(pushes, catalog, str(outbox["country"].iloc[0]), date)
        if len(over):
            shown = ", ".join(f"user {r.user_id}: {r.pushes:g} pushes from {r.window_start} ({r.rule})"
                              for r in over.head(3).itertuples())
            problems.append(f"caps exceeded in a 7-day window: {len(over)} cases, e.g. {shown}")
    return problems
