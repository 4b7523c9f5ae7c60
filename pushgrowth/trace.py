"""The whole story of one push, from its trace id: why it was sent, what chose it, and what happened.

Everything is read from the home folder's lake (Parquet, through DuckDB; the warehouse is never opened, so a
trace can be asked while dbt builds) and from the MLflow registry: the decision, the campaign, the group and
policy, the model version and the options it chose among with their probabilities (recomputed by the policy
rebuilt from the settings logged with the decisions, in the logged situation: the same context, free days,
capacity, coupon rules and coupon price), the probability of the plan it drew (equal to the logged propensity), the features it saw, the coupon and the
campaign group's budget that day, the pushes delivered, and the outcomes as they arrive.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from pushgrowth.bandit.features import DIMENSIONS
from pushgrowth.bandit.policy import Options, PolicyConfig, logged_room, schedule_mask
from pushgrowth.bandit.serving import SETTINGS_KEY, ServingSettings
from pushgrowth.domain import PLAN_DAYS
from pushgrowth.home import Home
from pushgrowth.storage import DECISION_LOG, DECISIONS, OUTBOX, PACING, RAW, USER_FEATURES, Dataset
from pushgrowth.storage import lake as store
from pushgrowth.storage.catalog import published_catalog


class TraceNotFound(LookupError):
    """No decision with this trace id in the lake."""


def _rows(lake: Path, dataset: Dataset, where: str, params: list) -> pd.DataFrame:
    return store.query(lake, dataset, where, params)


def explain(home: Home, trace_id: str) -> dict:
    """Every fact about the decision `trace_id`, as plain data (see the module docstring)."""
    decision = _rows(home.lake, DECISIONS, "trace_id = ?", [trace_id])
    if not len(decision):
        raise TraceNotFound(f"no decision with trace id {trace_id!r} in the decisions of {home.lake}")
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
    if store.exists(home.lake, PACING, country, date):
        pacing = store.read_frame(home.lake, PACING, country, date)
        match = pacing[(pacing["campaign_id"] == row["campaign_id"]) & (pacing["group"] == row["group"])]
        story["budget"] = _plain(match.iloc[0].to_dict()) if len(match) else {}
    story["outbox"] = _records(_rows(home.lake, OUTBOX, "trace_id = ?", [trace_id]),
                               ["idempotency_key", "send_date", "send_hour_local", "title", "body", "coupon_code"])
    story["deliveries"] = _records(_rows(home.lake, RAW["push_sends"], "trace_id = ?", [trace_id]),
                                   ["idempotency_key", "sent_at_local", "status", "failure_reason"])
    story["opens"] = _records(_rows(home.lake, RAW["push_events"], "trace_id = ?", [trace_id]), ["event_at_local"])
    story["redemptions"] = _records(_rows(home.lake, RAW["coupon_redemptions"], "trace_id = ?", [trace_id]),
                                    ["order_id", "discount_amount", "redeemed_at_utc"])
    story["opt_outs"] = _records(_rows(home.lake, RAW["opt_outs"], "trace_id = ?", [trace_id]), ["opted_out_at_utc"])
    outcome = _rows(home.lake, DECISION_LOG, "trace_id = ?", [trace_id])
    if len(outcome):
        keep = ["pushes_delivered", "opens", "converted", "redemptions", "coupon_cost", "opted_out", "window_orders",
                "window_gmv", "reward_open", "reward_conversion", "reward_net_revenue", "is_mature", "open_is_mature"]
        story["outcomes"] = _plain(outcome.iloc[0][[c for c in keep if c in outcome.columns]].to_dict())
    return story


def _context(home: Home, country: str, date: dt.date, user_id: int) -> pd.DataFrame:
    day = date - dt.timedelta(days=1)
    if not store.exists(home.lake, USER_FEATURES, country, day):
        return pd.DataFrame()
    features = store.read_frame(home.lake, USER_FEATURES, country, day)
    return features[features["user_id"] == user_id].reset_index(drop=True)


def serving_settings(home: Home, row: pd.Series, country: str, date: dt.date) -> tuple[ServingSettings, bool]:
    """The settings of the policy that served the decisions of `date`, as logged with them; for a partition
    written before they were logged, the defaults with the logged model (and False)."""
    logged = store.schema_metadata(home.lake, DECISIONS, country, date).get(SETTINGS_KEY)
    if logged:
        return ServingSettings.from_json(logged), True
    model = row.get("model_version")
    name, version = (str(row["model_name"]), str(model)) if isinstance(model, str) and model else (None, None)
    reference = published_catalog(home.lake).policies[country].reference_order_value
    return ServingSettings(name, version, PolicyConfig(), reference), False


def _options(home: Home, row: pd.Series, campaign, context: pd.DataFrame, date: dt.date) -> dict:
    """Each option of each dimension with its probability under the policy that chose the plan (marginals), and
    the probability of the logged plan under that policy, rebuilt from the logged settings and situation."""
    from pushgrowth.bandit import registry

    settings, logged = serving_settings(home, row, campaign.country, date)
    policy = registry.logged_policy(home, settings)
    options = Options.of_campaign(campaign)
    bits = int(row["free_days"])
    free = np.array([[(bits >> k) & 1 for k in range(PLAN_DAYS)]], dtype=bool)
    mask = schedule_mask(free, logged_room(row.to_frame().T), options.space, date)
    zero = np.asarray(options.space.coupon_values) == 0
    allowed = np.where(bool(row["coupons_allowed"]), True, zero)[None, :]
    cost = policy.expected_cost(context, options, campaign.coupon.cost_share)
    price = float(row["cost_price"]) if pd.notna(row.get("cost_price")) else 0.0
    dist, _ = policy.distribution(campaign.objective, context, options, mask, cost_price=price, expected_cost=cost)
    dist.restrict_coupons(allowed)
    space = options.space
    labels = {"coupon": [f"{v:g}" for v in space.coupon_values], "template": [t for t, _ in space.templates],
              "hour": [f"{h}h" for h in space.hours], "weekday": [str(w) for w in space.weekdays],
              "frequency": [f"x{f}" for f in space.frequencies]}
    marginals = {"coupon": dist.coupon[0], "template": dist.template[0], "hour": dist.hour[0],
                 "weekday": dist.schedule[0].sum(axis=1), "frequency": dist.schedule[0].sum(axis=0)}
    chosen = {"coupon": _index(space.coupon_values, float(row["coupon_value"])),
              "template": _index([t for t, _ in space.templates], str(row["template_id"])),
              "hour": _index(space.hours, int(row["send_hour"])), "weekday": _index(space.weekdays, int(row["send_weekday"])),
              "frequency": _index(space.frequencies, int(row["frequency"]))}
    recomputed = (float(dist.probability({k: np.array([v]) for k, v in chosen.items()})[0])
                  if all(v >= 0 for v in chosen.values()) else None)
    return {"policy": dist.policy, "model": policy.label, "logged_propensity": float(row["propensity"]),
            "recomputed_propensity": recomputed, "settings_logged": logged,
            "settings": json.loads(settings.to_json()),
            "dimensions": {d: dict(zip(labels[d], np.round(marginals[d], 4).tolist(), strict=True))
                           for d in DIMENSIONS}}


def _index(values, value) -> int:
    values = list(values)
    return values.index(value) if value in values else -1


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
