"""The catalog asset publishes only valid catalogs; its blocking check stops what depends on it."""

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest

from pushgrowth.campaigns import catalog_hash, load_catalog
from pushgrowth.campaigns.budget import campaign_totals
from pushgrowth.catalog_path import default_catalog_path
from pushgrowth.defs.campaigns.assets import budget_ledger_asset, campaign_catalog, catalog_is_valid
from pushgrowth.defs.campaigns.sensors import catalog_change_sensor
from pushgrowth.defs.resources import HomeResource
from pushgrowth.home import Home
from pushgrowth.storage import dataset
from pushgrowth.storage import lake as store
from pushgrowth.storage.catalog import publish, published_version


@pytest.fixture
def catalog_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "catalog"
    shutil.copytree(default_catalog_path(), folder)
    monkeypatch.setenv("PUSHGROWTH_CATALOG", str(folder))
    return folder


@dg.asset(deps=[campaign_catalog])
def assignments_stand_in() -> None:
    """Stands for what reads the catalog downstream (daily assignments)."""


def _run(home: Home):
    return dg.materialize([campaign_catalog, catalog_is_valid, assignments_stand_in],
                          resources={"home": HomeResource(root=str(home.root))}, raise_on_error=False)


def test_a_valid_catalog_is_published_with_its_hash_as_version(tmp_path, catalog_dir):
    home = Home.from_env(tmp_path / "home")
    result = _run(home)
    assert result.success
    materialization = result.asset_materializations_for_node("campaign_catalog")[0]
    assert materialization.metadata["version"].value == catalog_hash(catalog_dir)
    assert materialization.tags["dagster/data_version"] == catalog_hash(catalog_dir)
    campaigns = store.read_file_table(home.lake, dataset("catalog_campaigns")).to_pandas()
    assert len(campaigns) >= 80 and set(campaigns["country"]) == {"MLA", "MLB", "MLM"}
    assert published_version(home.lake) == catalog_hash(catalog_dir)
    assert "mlb-frete-gratis-primeira-compra" in materialization.metadata["active_campaigns"].value


def test_an_invalid_edit_is_not_published_and_blocks_downstream(tmp_path, catalog_dir):
    home = Home.from_env(tmp_path / "home")
    assert _run(home).success
    good = published_version(home.lake)
    mlb = catalog_dir / "MLB.yaml"
    mlb.write_text(mlb.read_text().replace("shares: {holdout: 0.1, bau: 0.45, bandit: 0.45}",
                                           "shares: {holdout: 0.1, bau: 0.5, bandit: 0.45}", 1))
    result = _run(home)
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed
    details = check.metadata["details"].value
    assert "MLB.yaml" in details and "shares" in details
    assert published_version(home.lake) == good  # the last valid catalog stays in force
    assert not result.asset_materializations_for_node("assignments_stand_in")


def test_the_sensor_requests_a_run_when_the_catalog_changes(catalog_dir):
    first = catalog_change_sensor(dg.build_sensor_context())
    assert len(first.run_requests) == 1
    again = catalog_change_sensor(dg.build_sensor_context(cursor=first.cursor))
    assert not again.run_requests
    (catalog_dir / "MLM.yaml").write_text((catalog_dir / "MLM.yaml").read_text() + "\n# reviewed\n")
    edited = catalog_change_sensor(dg.build_sensor_context(cursor=first.cursor))
    assert len(edited.run_requests) == 1 and edited.cursor != first.cursor


def test_budget_ledger_sums_the_month_so_far(tmp_path, catalog_dir):
    home = Home.from_env(tmp_path / "home")
    campaign = "mlb-frete-gratis-primeira-compra"

    def redemptions(day: dt.date, amounts: list[float]) -> pa.Table:
        n = len(amounts)
        return pa.Table.from_pandas(pd.DataFrame({
            "redemption_id": range(n), "order_id": range(n), "user_id": range(n), "trace_id": ["t"] * n,
            "campaign_id": [campaign] * n, "coupon_code": ["C"] * n, "discount_amount": amounts,
            "redeemed_at_utc": pd.to_datetime([f"{day} 15:00"] * n, utc=True), "country": ["MLB"] * n,
        }), preserve_index=False)

    catalog = load_catalog()
    publish(catalog.model_copy(update={"campaigns": [
        c.model_copy(update={"budget": c.budget.model_copy(update={"monthly": 90_000.0})}) if c.id == campaign else c
        for c in catalog.campaigns]}), home.lake)  # the published budget, not the YAML's, is the ledger's
    store.write(home.lake, dataset("raw_coupon_redemptions"), "MLB", dt.date(2026, 8, 31), redemptions(
        dt.date(2026, 8, 31), [999.0]))
    store.write(home.lake, dataset("raw_coupon_redemptions"), "MLB", dt.date(2026, 9, 1), redemptions(
        dt.date(2026, 9, 1), [15.0, 20.0]))
    store.write(home.lake, dataset("raw_coupon_redemptions"), "MLB", dt.date(2026, 9, 2), redemptions(
        dt.date(2026, 9, 2), [10.0]))
    key = dg.MultiPartitionKey({"country": "MLB", "date": "2026-09-02"})
    result = dg.materialize([budget_ledger_asset], partition_key=key,
                            resources={"home": HomeResource(root=str(home.root))})
    ledger = store.read(home.lake, dataset("budget_ledger"), "MLB", dt.date(2026, 9, 2)).to_pandas()
    row = campaign_totals(ledger, dt.date(2026, 9, 1)).set_index("campaign_id").loc[campaign]
    assert row["committed"] == pytest.approx(45.0)  # cost share 1.0; August's redemption is another month
    assert row["budget"] == pytest.approx(90_000.0) and row["remaining"] == pytest.approx(90_000 - 45.0)
    assert row["pace"] == pytest.approx(2 / 30)
    assert set(ledger["country"]) == {"MLB"}
    metadata = result.asset_materializations_for_node("budget_ledger")[0].metadata
    assert metadata["committed"].value >= 45.0
    assert metadata["pushgrowth/reads"].value == ["campaign_catalog", "raw_coupon_redemptions"]


def test_a_running_campaign_may_not_change_its_group_salt(tmp_path, catalog_dir):
    """A new salt would move a running campaign's users between holdout, BAU and bandit mid-experiment: the
    catalog asset compares the edit with what it published and refuses it, naming the file and the field."""
    home = Home.from_env(tmp_path / "home")
    assert _run(home).success
    good = published_version(home.lake)
    running = next(c for c in load_catalog(catalog_dir).campaigns
                   if c.country == "MLB" and c.schedule.status == "active" and c.schedule.start <= dt.date.today())
    mlb = catalog_dir / "MLB.yaml"
    text = mlb.read_text()
    start = text.index(f"id: {running.id}")
    line = text.index("shares: {", start)
    mlb.write_text(text[:line] + text[line:].replace("}", ", salt: reshuffled}", 1))
    assert load_catalog(catalog_dir).get(running.id).shares.salt == "reshuffled"  # a valid catalog on its own
    result = _run(home)
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed
    details = check.metadata["details"].value
    assert "MLB.yaml" in details and "shares.salt" in details and running.id in details
    assert published_version(home.lake) == good
    assert not result.asset_materializations_for_node("assignments_stand_in")


def test_the_salt_of_a_campaign_not_yet_running_may_change(tmp_path, catalog_dir):
    from pushgrowth.campaigns.loader import read_catalog, refuse_running_changes

    build = read_catalog(catalog_dir)
    published = build.catalog()
    campaign = published.campaigns[0]
    later = campaign.schedule.start - dt.timedelta(days=1)  # as of a day before it starts
    mla = catalog_dir / f"{campaign.country}.yaml"
    text = mla.read_text()
    line = text.index("shares: {", text.index(f"id: {campaign.id}"))
    mla.write_text(text[:line] + text[line:].replace("}", ", salt: fresh}", 1))
    edited = read_catalog(catalog_dir)
    assert refuse_running_changes(edited, published, later) == [] and not edited.problems
    problems = refuse_running_changes(read_catalog(catalog_dir), published, campaign.schedule.start)
    assert [p.field for p in problems] == ["shares.salt"]
