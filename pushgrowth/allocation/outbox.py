"""From decisions to the delivery-ready outbox: one row per push with its wording, coupon and local send time.

Each plan becomes its pushes (`plans.expand_plans`): the trace id of the decision plus an idempotency key per
push, so a re-run rebuilds exactly the same rows and the delivery system refuses any push it already has.
Wording is rendered once per distinct (campaign, template, coupon, first name, category) and joined back.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from pushgrowth.campaigns import Catalog, render
from pushgrowth.domain import COUNTRIES
from pushgrowth.plans import expand_plans

OUTBOX_COLUMNS = [
    "idempotency_key", "trace_id", "send_index", "country", "user_id", "campaign_id", "group", "policy",
    "model_version", "propensity", "template_id", "tone", "value_proposition", "coupon_kind", "coupon_value",
    "coupon_cap", "coupon_code", "send_date", "send_hour_local", "timezone", "title", "body", "expected_cost",
]


def coupon_code(trace_id: str) -> str:
    """A coupon code unique to the plan, derived from its trace id (so a re-run issues the same code)."""
    return "PG" + hashlib.blake2b(trace_id.encode(), digest_size=5).hexdigest().upper()


def build_outbox(decisions: pd.DataFrame, catalog: Catalog, users: pd.DataFrame, date: dt.date) -> pd.DataFrame:
    """Pushes of every plan in `decisions` (holdout and unsendable rows carry none).

    `users` is the users snapshot of the day before (`user_id`, `first_name`, `category_interest`, `timezone`).
    """
    plans = decisions[(decisions["group"] != "holdout") & decisions["frequency"].notna()].copy()
    if not len(plans):
        return pd.DataFrame(columns=OUTBOX_COLUMNS)
    plans["send_weekday"] = plans["send_weekday"].astype("int64")
    plans["frequency"] = plans["frequency"].astype("int64")
    profile = users.drop_duplicates("user_id").set_index("user_id")
    missing = ~plans["user_id"].isin(profile.index)
    if missing.any():
        raise ValueError(f"outbox: {int(missing.sum())} planned users are not in the users snapshot "
                         f"(first: {int(plans.loc[missing, 'user_id'].iloc[0])})")
    plans["first_name"] = plans["user_id"].map(profile["first_name"])
    plans["category"] = plans["user_id"].map(profile["category_interest"])
    plans["timezone"] = plans["user_id"].map(profile["timezone"])
    keys = ["campaign_id", "template_id", "coupon_value", "first_name", "category"]
    texts = {}
    for key in plans[keys].drop_duplicates().itertuples(index=False):
        pushed = render(key.template_id, catalog.get(key.campaign_id), float(key.coupon_value), key.first_name,
                        key.category)
        texts[tuple(key)] = (pushed.title, pushed.body)
    rendered = [texts[k] for k in plans[keys].itertuples(index=False, name=None)]
    plans["title"] = [t for t, _ in rendered]
    plans["body"] = [b for _, b in rendered]
    plans["coupon_code"] = np.where(plans["coupon_value"] > 0, plans["trace_id"].map(coupon_code), None)
    plans["send_hour_local"] = plans["send_hour"].astype("int64")
    plans["country"] = plans["country"].astype(str)
    pushes = expand_plans(plans.reset_index(drop=True), date)
    pushes["send_date"] = pushes["send_date"].astype("datetime64[s]")
    out = pushes[OUTBOX_COLUMNS].sort_values("idempotency_key").reset_index(drop=True)
    unknown = set(out["country"]) - set(COUNTRIES)
    if unknown:
        raise ValueError(f"outbox: unknown countries {sorted(unknown)}")
    return out
