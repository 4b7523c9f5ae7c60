"""The shipped catalog, and the Catalog / Campaign API the rest of the platform uses."""

from __future__ import annotations

import datetime as dt
import shutil
import statistics

import pytest

from pushgrowth.campaigns import catalog_hash, load_catalog, validate_catalog
from pushgrowth.campaigns.loader import catalog_files
from pushgrowth.domain import COUNTRIES, LIFECYCLE_SEGMENTS, VALUE_PROPOSITIONS
from tests.campaigns.conftest import CAMPAIGN_ID, campaign, country_file, write_catalog


@pytest.fixture(scope="module")
def shipped():
    return load_catalog()


def test_the_shipped_catalog_validates(shipped):
    assert validate_catalog() == []
    assert len(shipped.campaigns) >= 80
    assert shipped.countries == ("MLA", "MLB", "MLM")
    assert all(len(shipped.by_country(c)) >= 25 for c in shipped.countries)


def test_the_shipped_catalog_is_realistic(shipped):
    campaigns = shipped.campaigns
    assert statistics.median(c.joint_action_count for c in campaigns) > 1000
    assert {c.value_proposition for c in campaigns} == set(VALUE_PROPOSITIONS)
    assert {s for c in campaigns for s in c.audience.segments} == set(LIFECYCLE_SEGMENTS)
    assert {c.schedule.status for c in campaigns} == {"active", "paused", "draft"}
    assert any(c.shares.bandit == 0.10 for c in campaigns), "pilots at 10% bandit"
    assert all(c.budget.currency == COUNTRIES[c.country].currency for c in campaigns)
    ars = [v for c in shipped.by_country("MLA") if c.coupon.kind == "amount" for v in c.coupon.values if v]
    brl = [v for c in shipped.by_country("MLB") if c.coupon.kind == "amount" for v in c.coupon.values if v]
    assert min(ars) >= 1000 and max(ars) <= 20000 and min(brl) >= 5 and max(brl) <= 80
    assert len(shipped.active(dt.date(2026, 9, 1))) >= 60


def test_catalog_api(shipped):
    first_sept = shipped.active(dt.date(2026, 9, 1))
    assert all(c.schedule.status == "active" and c.runs_on(dt.date(2026, 9, 1)) for c in first_sept)
    assert "mla-black-friday" not in {c.id for c in first_sept}
    assert "mla-black-friday" in {c.id for c in shipped.active(dt.date(2026, 11, 27), country="MLA")}
    assert shipped.get("mlb-carrinho-abandonado").country == "MLB"
    with pytest.raises(KeyError, match="did you mean mla-carrito-abandonado"):
        shipped.get("mla-carito-abandonado")


def test_joint_action_count_and_action_space(tmp_path):
    catalog = load_catalog(write_catalog(tmp_path / "cat", {"MLA.yaml": country_file("MLA", campaign())}))
    c = catalog.get(CAMPAIGN_ID)
    assert c.joint_action_count == 3 * 3 * 4 * 3 * 2 == 216
    space = c.action_space()
    assert space.size == 216 and space.weekdays == (1, 3, 5) and space.coupon_cap == 0.0
    actions = space.joint_actions()
    assert len(actions) == 216 and set(actions["tone"]) == {"urgency", "benefit", "curiosity"}
    assert set(actions["coupon_kind"]) == {"amount"}


def test_catalog_hash_is_stable_and_tracks_content(tmp_path):
    a = write_catalog(tmp_path / "a", {"MLA.yaml": country_file("MLA", campaign())})
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b)
    assert catalog_hash(a) == catalog_hash(b) == load_catalog(a).version
    assert len(catalog_hash(a)) == 64
    write_catalog(b, {"_policy.yaml": {"defaults": {"min_holdout_share": 0.05}}})
    assert catalog_hash(b) != catalog_hash(a), "the policy file is part of the version"
    (a / "MLA.yaml").write_text((a / "MLA.yaml").read_text().replace("Envío", "Envio"))
    assert catalog_hash(a) != catalog_hash(tmp_path / "elsewhere" / "b")


def test_catalog_files_skip_underscore_and_hidden_files(tmp_path):
    root = write_catalog(tmp_path / "cat", {"MLA.yaml": "", "MLB.yml": "", "_policy.yaml": "", ".draft.yaml": ""})
    _, files, policy = catalog_files(root)
    assert [f.name for f in files] == ["MLA.yaml", "MLB.yml"]
    assert policy is not None and policy.name == "_policy.yaml"
