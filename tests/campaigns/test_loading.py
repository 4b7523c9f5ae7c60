"""Loading: shape errors become problems, every file's problems are reported at once, lines and policy files."""

from __future__ import annotations

import pytest
import yaml

from pushgrowth.campaigns import CatalogError, load_catalog, validate_catalog
from tests.campaigns.conftest import CAMPAIGN_ID, campaign, country_file, where, write_catalog


def test_pydantic_shape_errors_become_problems_with_file_campaign_and_field(check):
    broken = campaign(**{"id": "mla-roto", "coupon.values": [2000, "mucho"], "send_window.hour": [9],
                         "shares": None})
    problems = check(broken)
    assert sorted(where(problems)) == [("mla-roto", "coupon.values[1]"), ("mla-roto", "send_window.hour"),
                                       ("mla-roto", "shares")]
    by_field = {p.field: p.message for p in problems}
    assert by_field["coupon.values[1]"].startswith("input should be a valid number") and "'mucho'" in by_field[
        "coupon.values[1]"]
    assert by_field["send_window.hour"] == "unknown field 'hour'; did you mean 'hours'?"
    assert by_field["shares"] == "required field is missing"
    assert all(p.file.endswith("MLA.yaml") and p.line for p in problems)


def test_a_key_in_the_wrong_place_says_where_it_belongs(check):
    problems = check(campaign(weekly_cap=2))
    assert where(problems) == [(CAMPAIGN_ID, "weekly_cap")]
    assert problems[0].message == "unknown field 'weekly_cap'; it belongs under frequency"


def test_a_broken_campaign_does_not_hide_the_others_problems(check):
    shape = campaign(**{"id": "mla-roto", "objective": "clicks"})
    rule = campaign(**{"id": "mla-caro", "budget.monthly": 1000})
    problems = check(shape, rule, campaign())
    assert where(problems) == [("mla-roto", "objective"), ("mla-caro", "budget.monthly")]
    assert "unknown objective 'clicks'; expected one of: open, conversion, net_revenue" in problems[0].message


def test_every_problem_of_every_file_is_reported(tmp_path):
    mlb = campaign(**{"id": "mlb-caro", "country": "MLB", "budget.currency": "BRL", "coupon.values": [10, 20, 900],
                      "bau.coupon": 20, "params.min_purchase": 79, "shares.holdout": 0.0, "shares.bau": 0.55})
    root = write_catalog(tmp_path / "cat", {
        "MLA.yaml": country_file("MLA", campaign(**{"schedule.end": "2026-01-01"})),
        "MLB.yaml": country_file("MLB", mlb),
        "MLM.yaml": "country: MLM\ncampaigns:\n  - id: mlm-x\n    name: [unclosed\n",
    })
    problems = validate_catalog(root)
    assert [(p.file.rsplit("/", 1)[-1], p.campaign_id, p.field) for p in problems] == [
        ("MLA.yaml", CAMPAIGN_ID, "schedule.end"),
        ("MLB.yaml", "mlb-caro", "coupon.values[2]"),
        ("MLB.yaml", "mlb-caro", "shares.holdout"),
        ("MLM.yaml", "-", "-"),
    ]
    with pytest.raises(CatalogError) as err:
        load_catalog(root)
    assert "has 4 problems" in str(err.value)
    assert all(str(p) in str(err.value) for p in problems)


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    text = "country: MLA\ncampaigns:\n  - id: x\n   name: y\n  bad\n"
    root = write_catalog(tmp_path / "cat", {"MLA.yaml": text})
    [problem] = validate_catalog(root)
    assert problem.file.endswith("MLA.yaml") and problem.line == 4
    assert problem.message.startswith("YAML syntax error at line 4")
    assert str(problem).endswith("(line 4)")


def test_duplicate_yaml_keys_are_problems_because_yaml_keeps_only_the_last(tmp_path):
    text = yaml.safe_dump(country_file("MLA", campaign()), allow_unicode=True, sort_keys=False)
    text = text.replace("  objective: conversion\n", "  objective: conversion\n  objective: open\n")
    root = write_catalog(tmp_path / "cat", {"MLA.yaml": text})
    problems = validate_catalog(root)
    assert where(problems) == [(CAMPAIGN_ID, "objective")]
    assert problems[0].message.startswith("duplicate key; YAML keeps only the last one")
    assert text.splitlines()[problems[0].line - 1] == "  objective: open"


def test_line_numbers_point_at_the_field(tmp_path):
    root = write_catalog(tmp_path / "cat", {"MLA.yaml": country_file("MLA", campaign(**{"bau.hour": 21}))})
    [problem] = validate_catalog(root)
    lines = (root / "MLA.yaml").read_text().splitlines()
    assert lines[problem.line - 1].strip() == "hour: 21"


@pytest.mark.parametrize(("content", "field", "words"), [
    ("", "campaigns", "expected a list of campaigns"),
    ("country: MLA\ncampaign: []\n", "campaign", "unknown top-level key"),
    ("country: XX\ncampaigns: []\n", "country", "unknown country 'XX'"),
    ("country: MLA\ncampaigns:\n  - just a string\n", "", "expected a campaign (a mapping), got str"),
])
def test_malformed_files_are_problems_not_crashes(tmp_path, content, field, words):
    root = write_catalog(tmp_path / "cat", {"MLA.yaml": content})
    problems = validate_catalog(root)
    assert any(p.field == field and words in p.message for p in problems), [str(p) for p in problems]


def test_missing_path_and_empty_folder(tmp_path):
    assert "does not exist" in validate_catalog(tmp_path / "nope")[0].message
    (tmp_path / "empty").mkdir()
    assert "no campaign files" in validate_catalog(tmp_path / "empty")[0].message


def test_policy_file_overrides_the_defaults_and_is_validated(tmp_path):
    root = write_catalog(tmp_path / "cat", {"MLA.yaml": country_file("MLA", campaign())})
    write_catalog(root, {"_policy.yaml": {"countries": {"MLA": {"max_coupon_amount": 4000,
                                                                "quiet_hours": {"start": 20}}}}})
    problems = validate_catalog(root)
    assert where(problems) == [(CAMPAIGN_ID, "coupon.values[2]"), (CAMPAIGN_ID, "send_window.hours[3]")]
    assert "maximum of $ 4.000" in problems[0].message
    assert "quiet hours (20:00-07:59)" in problems[1].message
    write_catalog(root, {"_policy.yaml": {"defaults": {"max_title_chars": "short"}, "countries": {"XX": {}}}})
    policy_problems = [p for p in validate_catalog(root) if p.file.endswith("_policy.yaml")]
    assert {p.field for p in policy_problems} == {"countries.XX", "defaults.max_title_chars"}


def test_load_catalog_reads_the_env_var_by_default(tmp_path, monkeypatch):
    root = write_catalog(tmp_path / "cat", {"MLA.yaml": country_file("MLA", campaign())})
    monkeypatch.setenv("PUSHGROWTH_CATALOG", str(root))
    catalog = load_catalog()
    assert catalog.ids == (CAMPAIGN_ID,) and catalog.root == root
    assert catalog.files[CAMPAIGN_ID].endswith("MLA.yaml")


def test_a_single_file_is_a_catalog_too(tmp_path):
    root = write_catalog(tmp_path / "cat", {"MLA.yaml": country_file("MLA", campaign())})
    assert load_catalog(root / "MLA.yaml").ids == (CAMPAIGN_ID,)


def test_an_impossible_date_is_a_named_problem_and_the_definitions_still_load(tmp_path, monkeypatch):
    """`start: 2026-02-30` used to crash the YAML reader (no file, no line) and with it the code location."""
    import shutil
    import subprocess
    import sys

    from pushgrowth.campaigns import validate_catalog
    from pushgrowth.catalog_path import catalog_countries, default_catalog_path

    folder = tmp_path / "catalog"
    shutil.copytree(default_catalog_path(), folder)
    mlb = folder / "MLB.yaml"
    text = mlb.read_text()
    start = text.index("start: ") + len("start: ")
    mlb.write_text(text[:start] + "2026-02-30" + text[start + len("2026-09-01"):])
    problems = validate_catalog(folder)
    assert [(p.file.endswith("MLB.yaml"), p.field) for p in problems] == [(True, "schedule.start")]
    assert "2026-02-30" in problems[0].message and problems[0].line
    assert catalog_countries(folder) == ("MLA", "MLB", "MLM")
    env = {**__import__("os").environ, "PUSHGROWTH_CATALOG": str(folder), "PUSHGROWTH_HOME": str(tmp_path / "h")}
    loaded = subprocess.run([sys.executable, "-c", "from pushgrowth.definitions import defs; "
                             "print(len(list(defs.resolve_asset_graph().get_all_asset_keys())))"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0 and int(loaded.stdout.strip().splitlines()[-1]) > 30, loaded.stderr[-2000:]
