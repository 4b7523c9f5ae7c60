"""The catalog documentation stays true: its example is a valid campaign of the shipped catalog."""

from __future__ import annotations

import re
from pathlib import Path

from pushgrowth.campaigns import load_catalog, validate_catalog
from pushgrowth.campaigns.rules import RULES
from tests.campaigns.conftest import write_catalog

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
DOC = README[README.index("## The campaign catalog"):README.index("## Data quality gates")]


def test_the_documented_example_is_valid_and_shipped(tmp_path):
    example = re.search(r"```yaml\n(.*?)```", DOC, re.S).group(1)
    root = write_catalog(tmp_path / "doc", {"MLA.yaml": example})
    assert validate_catalog(root) == []
    documented = load_catalog(root).get("mla-envio-gratis-reactivacion")
    assert documented == load_catalog().get("mla-envio-gratis-reactivacion")
    assert f"= {documented.joint_action_count:,} weekly" in DOC.replace("\n", " ")


def test_every_rule_family_is_documented():
    headings = {"channel_supported": "**Channel**", "audience_consistent": "**Audience**",
                "coupon_within_policy": "**Coupon**", "templates_renderable": "**Templates**",
                "send_window_open": "**Send window**", "frequency_capped": "**Frequency**",
                "budget_sufficient": "**Budget**", "schedule_ordered": "**Schedule**",
                "shares_sum_to_one": "**Shares**", "bau_within_options": "**BAU**"}
    assert {rule.__name__ for rule in RULES} == set(headings)
    assert all(heading in DOC for heading in headings.values())
