"""`pushgrowth campaigns validate|show` through Typer's CliRunner: exit codes and what a person or CI reads."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from pushgrowth.campaigns import Campaign
from pushgrowth.campaigns.commands import app
from tests.campaigns.conftest import CAMPAIGN_ID, campaign, country_file, write_catalog

runner = CliRunner()


def test_validate_the_shipped_catalog_prints_a_summary_per_country():
    result = runner.invoke(app, ["validate", "--on", "2026-09-15"])
    assert result.exit_code == 0, result.output
    for words in ("MLA", "MLB", "MLM", "ARS", "BRL", "MXN", "campaign catalog", "catalog valid: 85 campaigns"):
        assert words in result.output


def test_validate_exits_1_with_one_line_per_problem(tmp_path):
    root = write_catalog(tmp_path / "cat", {"MLA.yaml": country_file("MLA", campaign(**{
        "coupon.values": [2000, 3500, 25000], "shares.holdout": 0.01, "shares.bandit": 0.54}))})
    result = runner.invoke(app, ["validate", str(root)])
    assert result.exit_code == 1
    lines = [line.split("MLA.yaml: ", 1)[1] for line in result.output.splitlines() if "MLA.yaml: " in line]
    assert len(lines) == 2
    assert lines[0].startswith(f"{CAMPAIGN_ID}: coupon.values[2]: $ 25.000 is above")
    assert lines[1].startswith(f"{CAMPAIGN_ID}: shares.holdout: holdout 0.01")
    assert "2 problem(s)" in result.output


def test_validate_json_has_the_documented_keys(tmp_path):
    root = write_catalog(tmp_path / "cat", {"MLA.yaml": country_file("MLA", campaign(), campaign(**{
        "id": "mla-b", "schedule.status": "paused", "budget.monthly": 100}))})
    result = runner.invoke(app, ["validate", str(root), "--json", "--on", "2026-10-01"])
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert set(out) == {"valid", "path", "version", "on", "campaigns", "countries", "problems"}
    assert out["valid"] is False and out["campaigns"] == 2 and len(out["version"]) == 64
    assert out["countries"]["MLA"] == {"campaigns": 2, "active": 1, "paused": 1, "draft": 0, "live": 1,
                                       "monthly_budget": 5_000_000, "currency": "ARS", "median_joint_actions": 216}
    [problem] = out["problems"]
    assert problem["campaign_id"] == "mla-b" and problem["field"] == "budget.monthly" and problem["line"] > 0
    assert set(problem) == {"file", "campaign_id", "field", "message", "line"}


def test_validate_json_of_a_valid_catalog_exits_0(tmp_path):
    root = write_catalog(tmp_path / "cat", {"MLA.yaml": country_file("MLA", campaign())})
    result = runner.invoke(app, ["validate", str(root), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["valid"] is True


def test_show_prints_the_campaign_as_yaml_with_its_action_count(tmp_path):
    root = write_catalog(tmp_path / "cat", {"MLA.yaml": country_file("MLA", campaign())})
    result = runner.invoke(app, ["show", CAMPAIGN_ID, "--path", str(root)])
    assert result.exit_code == 0, result.output
    assert "# joint actions: 216 = 3 coupons x 3 templates x 4 hours x 3 weekdays x 2 frequencies" in result.output
    shown = yaml.safe_load(result.output)
    assert shown["coupon"]["values"] == [2000, 3500, 5000]
    assert Campaign.model_validate(shown) == Campaign.model_validate(campaign())


def test_show_an_unknown_id_exits_1_with_suggestions():
    result = runner.invoke(app, ["show", "mla-carito-abandonado"])
    assert result.exit_code == 1
    assert "unknown campaign id 'mla-carito-abandonado'" in result.output
    assert "Did you mean: mla-carrito-abandonado" in result.output


def test_show_a_campaign_that_cannot_be_read_lists_its_problems(tmp_path):
    root = write_catalog(tmp_path / "cat", {"MLA.yaml": country_file("MLA", campaign(objective="clicks"))})
    result = runner.invoke(app, ["show", CAMPAIGN_ID, "--path", str(root)])
    assert result.exit_code == 1
    assert f"campaign {CAMPAIGN_ID} cannot be read" in result.output
    assert "unknown objective 'clicks'" in result.output


def test_the_main_cli_mounts_the_campaigns_app():
    from pushgrowth.cli import app as main

    result = runner.invoke(main, ["campaigns", "show", "mlm-buen-fin"])
    assert result.exit_code == 0 and "value_proposition: category_discount" in result.output
