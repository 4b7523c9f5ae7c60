"""The whole story of one push, from its trace id: why it was sent, what chose it, and what happened.

Everything is read from the home folder's lake (Parquet, through DuckDB; the warehouse is never opened, so a
trace can be asked while dbt builds) and from the MLflow registry: the decision, the campaign, the group and
policy, the model version and the options it chose among with their probabilities (recomputed from the logged
situation: the same context, free days, capacity and coupon rules), the features it saw, the coupon and the
campaign group's budget that day, the pushes delivered, and the outcomes as they arrive.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from pushgrowth.bandit.features import DIMENSIONS
from pushgrowth.bandit.policy import Options, schedule_mask
from pushgrowth.bandit.serving import ServingPolicy
from pushgrowth.catalog_store import published_catalog
from pushgrowth.domain import PLAN_DAYS
from pushgrowth.home import Home
from pushgrowth.lake import partition_dir


class TraceNotFound(LookupError):
    """No decision with this trace id in the lake."""


def _rows(lake: Path, dataset: str, where: str, params: list) -> pd.DataFrame:
    files = list(Path(lake).glob(f"{dataset}/*/*/*.parquet"))
    if not files:
        return pd.DataFrame()
    query = (f"select * from read_parquet(?, hive_partitioning = true, union_by_name = true) where {where}")
    with duckdb.connect() as con:
        return con.execute(query, [[str(f) for f in files], *params]).df()


def explain(home: Home, trace_id: str) -> dict:
    """Every fact about the decision `trace_id`, as plain data (see the module docstring)."""
    decision = _rows(home.lake, "decisions", "trace_id = ?", [trace_id])
    if not len(decision):
        raise TraceNotFound(f"no decision with trace id {trace_id!r} under {home.lake / 'decisions'}")
    row = decision.iloc[0]
    date = pd.Timestamp(row["date"]).date()
    country = str(row["country"])
    story: dict = {"trace_id": trace_id, "decision": _plain(row.drop(labels=["date"], errors="ignore").to_dict()),
                   "decision_date": date.isoformat(), "country": country}
    catalog = published_catalog(home.lake)
    campaign = catalog.get(str(row["campaign_id"])) if str(row["campaign_id"]) in catalog.ids else None
    if campaign is not None:
        story["campaign"] = {"id": campaign.id, "name": campaign.name, "objective": campaign.objective,
                             "value_proposition": campaign.value_proposition,
                             "shares": campaign.shares.model_dump(), "bau": campaign.bau.model_dump(),
                             "joint_actions": campaign.joint_action_count}
    context = _context(home, country, date, int(row["user_id"]))
    story["features"] = _plain(context.iloc[0].to_dict()) if len(context) else {}
    if campaign is not None and len(context) and row["group"] == "bandit" and pd.notna(row["frequency"]):
        story["options"] = _options(home, row, campaign, context, date)
    pacing_file = partition_dir(home.lake, "pacing", country, date) / "part-0.parquet"
    if pacing_file.exists():
        pacing = pd.read_parquet(pacing_file)
        match = pacing[(pacing["campaign_id"] == row["campaign_id"]) & (pacing["group"] == row["group"])]
        story["budget"] = _plain(match.iloc[0].to_dict()) if len(match) else {}
    story["outbox"] = _records(_rows(home.lake, "outbox", "trace_id = ?", [trace_id]),
                               ["idempotency_key", "send_date", "send_hour_local", "title", "body", "coupon_code"])
    story["deliveries"] = _records(_rows(home.lake, "raw/push_sends", "trace_id = ?", [trace_id]),
                                   ["idempotency_key", "sent_at_local", "status", "failure_reason"])
    story["opens"] = _records(_rows(home.lake, "raw/push_events", "trace_id = ?", [trace_id]), ["event_at_local"])
    story["redemptions"] = _records(_rows(home.lake, "raw/coupon_redemptions", "trace_id = ?", [trace_id]),
                                    ["order_id", "discount_amount", "redeemed_at_utc"])
    story["opt_outs"] = _records(_rows(home.lake, "raw/opt_outs", "trace_id = ?", [trace_id]), ["opted_out_at_utc"])
    outcome = _rows(home.lake, "marts/decision_log", "trace_id = ?", [trace_id])
    if len(outcome):
        keep = ["pushes_delivered", "opens", "converted", "redemptions", "coupon_cost", "opted_out", "window_orders",
                "window_gmv", "reward_open", "reward_conversion", "reward_net_revenue", "is_mature", "open_is_mature"]
        story["outcomes"] = _plain(outcome.iloc[0][[c for c in keep if c in outcome.columns]].to_dict())
    return story


def _context(home: Home, country: str, date: dt.date, user_id: int) -> pd.DataFrame:
    path = partition_dir(home.lake, "marts/user_features", country, date - dt.timedelta(days=1)) / "part-0.parquet"
    if not path.exists():
        return pd.DataFrame()
    features = pd.read_parquet(path)
    return features[features["user_id"] == user_id].reset_index(drop=True)


def _options(home: Home, row: pd.Series, campaign, context: pd.DataFrame, date: dt.date) -> dict:
    """Each option of each dimension with its probability under the policy that chose the plan (marginals)."""
    from pushgrowth.bandit import registry

    model = None
    if isinstance(row.get("model_version"), str) and row["model_version"]:
        model = registry.load(home, registry.ModelRef(str(row["model_name"]), str(row["model_version"]), ""))
    policy = ServingPolicy(model, row.get("model_name"), row.get("model_version"),
                           reference_order_value=published_catalog(home.lake).policies[campaign.country]
                           .reference_order_value)
    options = Options.of_campaign(campaign)
    bits = int(row["free_days"])
    free = np.array([[(bits >> k) & 1 for k in range(PLAN_DAYS)]], dtype=bool)
    mask = schedule_mask(free, np.array([int(row["capacity"])]), options.space, date)
    zero = np.asarray(options.space.coupon_values) == 0
    allowed = np.where(bool(row["coupons_allowed"]), True, zero)[None, :]
    dist, _ = policy.distribution(campaign.objective, context, options, mask, allowed)
    space = options.space
    labels = {"coupon": [f"{v:g}" for v in space.coupon_values], "template": [t for t, _ in space.templates],
              "hour": [f"{h}h" for h in space.hours], "weekday": [str(w) for w in space.weekdays],
              "frequency": [f"x{f}" for f in space.frequencies]}
    marginals = {"coupon": dist.coupon[0], "template": dist.template[0], "hour": dist.hour[0],
                 "weekday": dist.schedule[0].sum(axis=1), "frequency": dist.schedule[0].sum(axis=0)}
    return {"policy": dist.policy, "model": policy.label, "logged_propensity": float(row["propensity"]),
            "dimensions": {d: dict(zip(labels[d], np.round(marginals[d], 4).tolist(), strict=True))
                           for d in DIMENSIONS}}


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    if not len(frame):
        return []
    return [_plain(r) for r in frame[[c for c in columns if c in frame.columns]].to_dict(orient="records")]


def _plain(values: dict) -> dict:
    out = {}
    for k, v in values.items():
        if isinstance(v, (np.floating, float)):
            out[k] = None if np.isnan(v) else round(float(v), 6)
        elif isinstance(v, np.integer):
            out[k] = int(v)
        elif isinstance(v, (pd.Timestamp, dt.date, dt.datetime)):
            out[k] = v.isoformat()
        elif v is pd.NA or v is pd.NaT:
            out[k] = None
        else:
            out[k] = v
    return out
