"""Flat tables of the catalog for dbt and Dagster."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pushgrowth.campaigns import catalog_frames, load_catalog
from pushgrowth.campaigns.schema import Catalog
from tests.campaigns.conftest import CAMPAIGN_ID, campaign, country_file, write_catalog


def _catalog(tmp_path) -> Catalog:
    other = campaign(**{"id": "mla-otro", "value_proposition": "cart_reminder", "audience.platforms": ["ios"],
                        "audience.categories": ["home", "toys"], "audience.mp_user": True,
                        "schedule.end": None, "schedule.status": "paused"})
    return load_catalog(write_catalog(tmp_path / "cat", {"MLA.yaml": country_file("MLA", campaign(), other)}))


def test_one_row_per_campaign_with_scalar_fields(tmp_path):
    catalog = _catalog(tmp_path)
    frames = catalog_frames(catalog)
    assert set(frames) == {"campaigns", "campaign_segments", "campaign_audience", "campaign_actions",
                           "campaign_templates"}
    rows = frames["campaigns"].set_index("campaign_id")
    first = rows.loc[CAMPAIGN_ID]
    assert first["joint_action_count"] == 216 and first["budget_monthly"] == 5_000_000
    assert first["bau_template_id"] == "beneficio" and first["bau_tone"] == "benefit" and first["bau_weekday"] == 3
    assert first["start_date"] == dt.date(2026, 9, 1) and first["catalog_version"] == catalog.version
    assert pd.isna(rows.loc["mla-otro", "end_date"]) and rows.loc["mla-otro", "status"] == "paused"
    assert bool(rows.loc["mla-otro", "audience_mp_user"]) and pd.isna(first["audience_mp_user"])
    assert str(frames["campaigns"]["coupon_max_discount"].dtype) == "Float64"


def test_long_tables(tmp_path):
    frames = catalog_frames(_catalog(tmp_path))
    segments = frames["campaign_segments"]
    assert sorted(segments[segments.campaign_id == CAMPAIGN_ID]["segment"]) == ["active", "at_risk"]
    audience = frames["campaign_audience"]
    assert sorted(map(tuple, audience[["rule", "value"]].to_numpy().tolist())) == [
        ("category", "home"), ("category", "toys"), ("platform", "ios")]
    actions = frames["campaign_actions"]
    mine = actions[actions.campaign_id == CAMPAIGN_ID]
    assert mine.groupby("dimension").size().to_dict() == {"coupon_value": 3, "frequency": 2, "hour": 4,
                                                           "template": 3, "weekday": 3}
    weekdays = mine[mine.dimension == "weekday"]
    assert weekdays["value"].tolist() == ["tue", "thu", "sat"] and weekdays["value_number"].tolist() == [1, 3, 5]
    assert mine[mine.dimension == "template"]["value_number"].isna().all()
    assert len(frames["campaign_templates"]) == 6


def test_frames_of_an_empty_catalog_keep_their_columns(tmp_path):
    empty = Catalog(campaigns=(), policies={}, version="x", root=tmp_path)
    frames = catalog_frames(empty)
    assert all(len(f) == 0 for f in frames.values())
    assert "joint_action_count" in frames["campaigns"].columns
