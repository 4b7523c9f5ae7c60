"""The catalog as flat tables, for dbt seeds/sources and Dagster metadata: no nesting, one fact per row.

Tables (all keyed by `campaign_id`):
- `campaigns`: one row per campaign with every scalar field (nested names joined by `_`), its joint action
  count and the catalog version;
- `campaign_segments`: (campaign_id, segment), the eligible lifecycle segments;
- `campaign_audience`: (campaign_id, rule, value) for the list rules `platform`, `region` and `category`;
- `campaign_actions`: (campaign_id, dimension, position, value, value_number), one row per option of each
  action dimension (`coupon_value`, `template`, `hour`, `weekday`, `frequency`), `value_number` being the
  numeric form (weekday 0 = Monday; null for templates);
- `campaign_templates`: (campaign_id, template_id, tone, title, body).
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

import pandas as pd

from pushgrowth.campaigns.schema import Campaign, Catalog
from pushgrowth.domain import COUNTRIES, WEEKDAYS

CAMPAIGN_COLUMNS: dict[str, str] = {
    "campaign_id": "string", "country": "string", "channel": "string", "name": "string", "owner": "string",
    "value_proposition": "string", "objective": "string", "status": "string",
    "start_date": "date32[pyarrow]", "end_date": "date32[pyarrow]",
    "coupon_kind": "string", "coupon_max_discount": "Float64", "coupon_cost_share": "float64",
    "coupon_limit_per_user": "Int64", "coupon_validity_days": "Int64",
    "params_installments": "Int64", "params_cashback": "Float64", "params_min_purchase": "Float64",
    "audience_mp_user": "boolean", "audience_min_lifetime_orders": "Int64",
    "audience_min_days_since_last_order": "Int64", "audience_max_days_since_last_order": "Int64",
    "weekly_cap": "Int64", "budget_monthly": "float64", "currency": "string",
    "share_holdout": "float64", "share_bau": "float64", "share_bandit": "float64",
    "bau_coupon_value": "float64", "bau_template_id": "string", "bau_tone": "string", "bau_hour": "Int64",
    "bau_weekday": "Int64", "bau_frequency": "Int64", "joint_action_count": "Int64", "catalog_version": "string",
}
LONG_COLUMNS: dict[str, dict[str, str]] = {
    "campaign_segments": {"campaign_id": "string", "segment": "string"},
    "campaign_audience": {"campaign_id": "string", "rule": "string", "value": "string"},
    "campaign_actions": {"campaign_id": "string", "dimension": "string", "position": "Int64", "value": "string",
                         "value_number": "Float64"},
    "campaign_templates": {"campaign_id": "string", "template_id": "string", "tone": "string", "title": "string",
                           "body": "string"},
}


def _campaign_row(c: Campaign, version: str) -> dict[str, Any]:
    a, coupon, params, bau = c.audience, c.coupon, c.params, c.bau
    return {
        "campaign_id": c.id, "country": c.country, "channel": c.channel, "name": c.name, "owner": c.owner,
        "value_proposition": c.value_proposition, "objective": c.objective, "status": c.schedule.status,
        "start_date": c.schedule.start, "end_date": c.schedule.end,
        "coupon_kind": coupon.kind, "coupon_max_discount": coupon.max_discount,
        "coupon_cost_share": coupon.cost_share,
        "coupon_limit_per_user": coupon.limit_per_user, "coupon_validity_days": coupon.validity_days,
        "params_installments": params.installments, "params_cashback": params.cashback,
        "params_min_purchase": params.min_purchase,
        "audience_mp_user": a.mp_user, "audience_min_lifetime_orders": a.min_lifetime_orders,
        "audience_min_days_since_last_order": a.min_days_since_last_order,
        "audience_max_days_since_last_order": a.max_days_since_last_order,
        "weekly_cap": c.frequency.weekly_cap, "budget_monthly": c.budget.monthly, "currency": c.budget.currency,
        "share_holdout": c.shares.holdout, "share_bau": c.shares.bau, "share_bandit": c.shares.bandit,
        "bau_coupon_value": bau.coupon, "bau_template_id": bau.template,
        "bau_tone": next((t.tone for t in c.templates if t.id == bau.template), None), "bau_hour": bau.hour,
        "bau_weekday": WEEKDAYS.index(bau.weekday), "bau_frequency": bau.frequency,
        "joint_action_count": c.joint_action_count, "catalog_version": version,
    }


def _action_rows(c: Campaign) -> list[tuple[str, str, int, str, float | None]]:
    dims: list[tuple[str, list[tuple[str, float | None]]]] = [
        ("coupon_value", [(f"{v:g}", float(v)) for v in c.coupon.values]),
        ("template", [(t.id, None) for t in c.templates]),
        ("hour", [(str(h), float(h)) for h in c.send_window.hours]),
        ("weekday", [(d, float(WEEKDAYS.index(d))) for d in c.send_window.weekdays]),
        ("frequency", [(str(f), float(f)) for f in c.frequency.options]),
    ]
    return [(c.id, dim, i, text, number) for dim, options in dims for i, (text, number) in enumerate(options)]


def _frame(rows: list[Any], columns: dict[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns)) if rows else pd.DataFrame(columns=list(columns))
    return frame.astype(columns)


def catalog_frames(catalog: Catalog) -> dict[str, pd.DataFrame]:
    """Flat tables of the catalog (see the module docstring), with stable column types even when empty."""
    campaigns = catalog.campaigns
    audience = [(c.id, rule, value) for c in campaigns
                for rule, values in (("platform", c.audience.platforms), ("region", c.audience.regions),
                                     ("category", c.audience.categories))
                for value in values or []]
    return {
        "campaigns": _frame([_campaign_row(c, catalog.version) for c in campaigns], CAMPAIGN_COLUMNS),
        "campaign_segments": _frame([(c.id, s) for c in campaigns for s in c.audience.segments],
                                    LONG_COLUMNS["campaign_segments"]),
        "campaign_audience": _frame(audience, LONG_COLUMNS["campaign_audience"]),
        "campaign_actions": _frame([row for c in campaigns for row in _action_rows(c)],
                                   LONG_COLUMNS["campaign_actions"]),
        "campaign_templates": _frame(
            [(c.id, t.id, t.tone, t.title, t.body) for c in campaigns for t in c.templates],
            LONG_COLUMNS["campaign_templates"]),
    }


def country_summary(campaigns: list[Campaign], on: dt.date) -> dict[str, dict[str, Any]]:
    """Per country: campaigns by status, campaigns live on `on`, monthly budget of active ones, median actions."""
    out: dict[str, dict[str, Any]] = {}
    for code in sorted({c.country for c in campaigns}):
        mine = [c for c in campaigns if c.country == code]
        status = [c.schedule.status for c in mine]
        out[code] = {
            "campaigns": len(mine),
            "active": status.count("active"),
            "paused": status.count("paused"),
            "draft": status.count("draft"),
            "live": sum(c.is_active(on) for c in mine),
            "monthly_budget": sum(c.budget.monthly for c in mine if c.schedule.status == "active"),
            "currency": COUNTRIES[code].currency,
            "median_joint_actions": float(statistics.median(c.joint_action_count for c in mine)),
        }
    return out
