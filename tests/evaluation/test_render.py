"""The evaluation report: HTML, PNG plots and Markdown from a summary dict, complete or with parts missing."""

from __future__ import annotations

import base64
import copy
import math
import re
from pathlib import Path

import pytest

from pushgrowth.evaluation.render import MARKDOWN_BUDGET, plot_files, render_html, render_markdown

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KINDS = ("open_rate_by_week", "regret_by_week", "ate")


def interval(estimate: float, low: float, high: float, n: int = 5000) -> dict:
    return {"estimate": estimate, "ci_low": low, "ci_high": high, "std_error": (high - low) / 3.92, "n": n}


def country(currency: str, bau_rate: float, bandit_rate: float, lift: dict, *, regret: tuple[float, float],
            n_campaigns: int = 12) -> dict:
    def group(decisions: int, sends: int, rate: float | None, conversions: int, revenue: float) -> dict:
        return {"decisions": decisions, "users": decisions // 4, "sends": sends,
                "opens": round(sends * rate) if rate is not None else 0, "open_rate": rate,
                "mature_decisions": decisions - 300, "conversions": conversions,
                "conversion_rate": conversions / (decisions - 300), "net_revenue_per_user": revenue}

    return {
        "currency": currency, "decisions": 12345, "first_decision": "2026-09-02", "last_decision": "2026-09-21",
        "groups": {"holdout": group(1234, 0, None, 40, 10.0), "bau": group(5500, 9000, bau_rate, 190, 10.55),
                   "bandit": group(5611, 9100, bandit_rate, 230, 11.02)},
        "ate_vs_holdout": {"bau": interval(0.55, 0.12, 0.98), "bandit": interval(1.02, 0.60, 1.44)},
        "lift_bandit_vs_bau": {"open_rate": lift, "net_revenue_per_user": interval(0.47, -0.05, 0.99)},
        "by_week": [{"week": w, "start": f"2026-09-{2 + 7 * (w - 1):02d}", "bau_open_rate": bau_rate,
                     "bandit_open_rate": bau_rate + 0.005 * w, "bau_sends": 3000, "bandit_sends": 3030}
                    for w in (1, 2, 3)],
        "by_bandit_share": [{"bandit_share": 0.45, "campaigns": 20, "decisions": 9000,
                             "open_rate_lift": interval(0.012, 0.004, 0.020),
                             "net_revenue_lift": interval(0.30, -0.20, 0.80)},
                            {"bandit_share": 0.15, "campaigns": 8, "decisions": 3345,
                             "open_rate_lift": interval(0.02, -0.001, 0.041),
                             "net_revenue_lift": interval(0.9, 0.1, 1.7)}],
        "campaigns": [{"campaign_id": f"c{i:03d}", "group": g, "decisions": 100 + 10 * i + (g == "bandit"),
                       "sends": 150 + i, "open_rate": 0.08, "net_revenue_per_user": 10.0 + i / 10}
                      for i in range(n_campaigns) for g in ("bau", "bandit")],
        "oracle": {"value": {"holdout": 0.0, "bau": 0.712, "bandit": 0.834},
                   "regret_per_week": [{"week": 1, "start": "2026-09-02", "bau": 0.25, "bandit": regret[0],
                                        "bau_value": 0.75, "bandit_value": 1 - regret[0]},
                                       {"week": 2, "start": "2026-09-09", "bau": 0.26, "bandit": 0.2,
                                        "bau_value": 0.74, "bandit_value": 0.8},
                                       {"week": 3, "start": "2026-09-16", "bau": 0.248, "bandit": regret[1],
                                        "bau_value": 0.752, "bandit_value": 1 - regret[1]}],
                   "incremental_net_revenue_per_decision": {"holdout": 0.0, "bau": 0.61, "bandit": 1.07}},
        "models": {"serving_model": "pushgrowth-bandit v4", "promotions": 3, "rejections": 1},
        "budget": [{"campaign_id": "c000", "group": "bandit", "budget": 125000.0, "committed": 40500.5,
                    "pace": 0.7, "burn_ratio": 0.46}],
    }


def full_summary() -> dict:
    return {
        "seed": 7, "start_date": "2026-09-01", "days": 21, "users": {"MLA": 1800, "MLB": 4200, "MLM": 3000},
        "runs": 250, "failures": [], "generated_at": "2026-11-24T15:00:00Z",
        "countries": {
            "MLA": country("ARS", 0.061, 0.068, interval(0.007, 0.002, 0.012), regret=(0.31, 0.18)),
            "MLB": country("BRL", 0.075, 0.091, interval(0.016, 0.011, 0.021), regret=(0.30, 0.12),
                           n_campaigns=40),
            "MLM": country("MXN", 0.070, 0.069, interval(-0.001, -0.006, 0.004), regret=(0.20, 0.22)),
        },
        "pooled": {"currency": "USD", "fx_usd_per_unit": {"MLA": 0.001, "MLB": 0.18, "MLM": 0.055},
                   "ate_vs_holdout": {"bau": interval(0.05, 0.01, 0.09), "bandit": interval(0.09, 0.04, 0.14)},
                   "difference_bandit_minus_bau": interval(0.04, -0.01, 0.09)},
    }


def degraded_summary() -> dict:
    """No pooled section, no oracle, empty weeks, None and NaN values, malformed parts and an empty country."""
    summary = full_summary()
    del summary["pooled"]
    summary["generated_at"] = None
    mla = summary["countries"]["MLA"]
    del mla["oracle"]
    mla["by_week"] = []
    mla["groups"]["bau"]["open_rate"] = None
    mla["groups"]["bandit"]["net_revenue_per_user"] = math.nan
    mla["lift_bandit_vs_bau"]["open_rate"] = {"estimate": None, "ci_low": None, "ci_high": None, "std_error": None,
                                              "n": 0}
    mla["ate_vs_holdout"] = {"bau": None, "bandit": {"estimate": 0.5}}
    mla["campaigns"] = None
    mla["budget"] = None
    mlb = summary["countries"]["MLB"]
    mlb["oracle"] = {"value": None, "regret_per_week": [{"week": 1, "bau": None, "bandit": 0.3}],
                     "incremental_net_revenue_per_decision": None}
    mlb["by_week"] = [{"week": 1, "start": None, "bau_open_rate": None, "bandit_open_rate": None}]
    mlb["groups"] = []  # malformed: reads as no groups
    mlb["ate_vs_holdout"]["bandit"] = interval(2.0, 0.5, 1.5)  # estimate outside its own interval
    mlb["by_bandit_share"] = [None, {"bandit_share": None}]
    mlb["models"] = None
    summary["countries"]["MLM"] = {"decisions": 0}
    summary["countries"]["MLX"] = None
    return summary


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = render_html(full_summary(), tmp_path_factory.mktemp("html") / "reports" / "evaluation.html")
    return out.read_text(encoding="utf-8")


def embedded_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


# --------------------------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------------------------


def test_html_has_a_section_per_country_after_the_pooled_one(report: str) -> None:
    assert report.startswith("<!DOCTYPE html>")
    positions = [report.index(f'<section id="{anchor}">') for anchor in ("pooled", "country-MLA", "country-MLB",
                                                                          "country-MLM")]
    assert positions == sorted(positions)
    for code in ("MLA", "MLB", "MLM"):
        assert f"<h2>{code}</h2>" in report


def test_html_states_the_verdicts_with_their_numbers(report: str) -> None:
    assert "bandit open rate 9.1% vs BAU 7.5%; within campaigns +1.6 pp (95% CI +1.1 to +2.1)" in report
    assert "bandit open rate 6.8% vs BAU 6.1%; within campaigns +0.7 pp (95% CI +0.2 to +1.2)" in report
    assert "bandit open rate 6.9% vs BAU 7.0%; within campaigns -0.1 pp (95% CI -0.6 to +0.4)" in report
    assert "bandit net revenue per user 11.02 BRL vs BAU 10.55 BRL; within campaigns +0.47 BRL (95% CI -0.05 to +0.99)" in report
    assert "BAU vs holdout (ATE, net revenue per user): +0.55 BRL (95% CI +0.12 to +0.98)" in report
    assert "bandit vs holdout (ATE, net revenue per user): +1.02 MXN (95% CI +0.60 to +1.44)" in report
    assert "bandit vs holdout (pooled ATE, net revenue per user): +0.09 USD (95% CI +0.04 to +0.14)" in report
    assert "bandit minus BAU (pooled, net revenue per user): +0.04 USD (95% CI -0.01 to +0.09)" in report
    assert "bandit regret (oracle) 0.300 in week 1 → 0.120 in week 3 (-60%); BAU 0.250 → 0.248" in report
    assert "bandit regret (oracle) 0.200 in week 1 → 0.220 in week 3 (+10%)" in report


def test_html_marks_each_interval_against_zero(report: str) -> None:
    def mark_of(text: str) -> str:
        line = next(li for li in re.findall(r"<li class=\"\w+\">(.*?)</li>", report) if text in li)
        return re.sub(r"<[^>]+>", "", line).split(text, 1)[1].strip()

    assert mark_of("+1.6 pp (95% CI +1.1 to +2.1)") == "✓ above zero"
    assert mark_of("-0.1 pp (95% CI -0.6 to +0.4)") == "✗ includes zero"
    assert mark_of("+0.47 BRL (95% CI -0.05 to +0.99)") == "✗ includes zero"
    assert mark_of("0.300 in week 1 → 0.120 in week 3").endswith("✓ shrank")
    assert mark_of("0.200 in week 1 → 0.220 in week 3").endswith("✗ did not shrink")


def test_html_embeds_every_plot_and_refers_to_no_network(report: str) -> None:
    pngs = embedded_pngs(report)
    assert len(pngs) == 3 * len(KINDS) + 1
    assert all(png.startswith(PNG_MAGIC) for png in pngs)
    assert "http://" not in report and "https://" not in report
    assert "<script" not in report and "<link" not in report


def test_html_tables_groups_rollout_weeks_campaigns_and_budget(report: str) -> None:
    mlb = report[report.index('<section id="country-MLB">'):report.index('<section id="country-MLM">')]
    for caption in ("Groups", "Results per bandit share (rollout)", "Open rate by week", "Oracle value per group",
                    "Regret by week", "Budget (current month)"):
        assert f"<h3>{caption}" in mlb
    assert "Top campaigns by decisions (30 of 80 campaign × group rows)" in mlb
    assert "9,100" in mlb and "11.02 BRL" in mlb and "125,000.00 BRL" in mlb and "70.0%" in mlb
    # The busiest first: c039 (bandit, 491 decisions) heads the table; the 30 rows stop at c025.
    campaigns = mlb[mlb.index("Top campaigns"):]
    ids = re.findall(r"<td>(c\d{3})</td>", campaigns[:campaigns.index("</table>")])
    assert ids[:2] == ["c039", "c039"] and len(ids) == 30 and "c024" not in ids
    assert "15.0%" in mlb and "45.0%" in mlb  # bandit shares


def test_html_pooled_group_table_adds_up_countries(report: str) -> None:
    pooled = report[report.index('<section id="pooled">'):report.index('<section id="country-MLA">')]
    assert "Groups, all countries" in pooled
    assert f"{3 * 5611:,}" in pooled  # bandit decisions over three countries
    assert f"{3 * 9100:,}" in pooled  # bandit sends


def test_html_escapes_summary_text(tmp_path: Path) -> None:
    summary = {"countries": {"MLB": {"currency": "BRL", "decisions": 1, "groups": {"bau": {"decisions": 1}},
                                     "campaigns": [{"campaign_id": "<script>alert(1)</script>", "group": "bau"}]}},
               "failures": ["<b>MLB</b> & co"]}
    html = render_html(summary, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;MLB&lt;/b&gt; &amp; co" in html


# --------------------------------------------------------------------------------------------------------------
# PNG files
# --------------------------------------------------------------------------------------------------------------


def test_plot_files_writes_one_valid_small_png_per_country_and_kind(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    open_figures = plt.get_fignums()
    files = plot_files(full_summary(), tmp_path / "plots")
    assert plt.get_fignums() == open_figures  # nothing registered with pyplot, so nothing left to close
    expected = {f"{code}_{kind}" for code in ("MLA", "MLB", "MLM") for kind in KINDS} | {"pooled_ate"}
    assert set(files) == expected
    for name, path in files.items():
        assert path == tmp_path / "plots" / f"{name}.png"
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert 1000 < len(data) < 200_000
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(f"{n}.png" for n in expected)
    png = files["MLB_ate"].read_bytes()
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (600, 350)


def test_country_code_cannot_escape_the_output_folder(tmp_path: Path) -> None:
    summary = {"countries": {"../evil": full_summary()["countries"]["MLB"]}}
    files = plot_files(summary, tmp_path / "plots")
    assert files and all(p.parent == tmp_path / "plots" for p in files.values())


# --------------------------------------------------------------------------------------------------------------
# Missing parts
# --------------------------------------------------------------------------------------------------------------


def test_summary_with_missing_parts_renders(tmp_path: Path) -> None:
    summary = degraded_summary()
    original = copy.deepcopy(summary)
    html = render_html(summary, tmp_path / "r.html").read_text(encoding="utf-8")
    markdown = render_markdown(summary)
    files = plot_files(summary, tmp_path / "plots")
    assert summary.keys() == original.keys() and summary["countries"].keys() == original["countries"].keys()

    assert '<section id="pooled">' not in html  # no pooled ATEs, and only MLA has groups to add up
    assert "### All countries" not in markdown
    assert "bandit open rate 6.8% vs BAU –; within campaigns – (95% CI –)" in html
    assert "bandit net revenue per user – vs BAU 10.55 ARS" in html
    assert "BAU vs holdout (ATE, net revenue per user): – (95% CI –)" in html
    assert "bandit vs holdout (ATE, net revenue per user): +0.50 ARS (95% CI –)" in html
    assert "No oracle" in html
    assert "bandit regret (oracle): fewer than two weeks with data" in html
    assert "No decisions yet" in html
    for code in ("MLA", "MLB", "MLM", "MLX"):
        assert f"<h2>{code}</h2>" in html
    assert "http://" not in html and "https://" not in html

    # Only plots with data: MLA has ATEs (bandit only) but no weeks and no oracle; MLB has its ATEs and one
    # week of regret but no open rates; MLM and MLX have nothing; there is no pooled section.
    assert set(files) == {"MLA_ate", "MLB_regret_by_week", "MLB_ate"}
    assert len(embedded_pngs(html)) == 3
    assert "- bandit open rate 6.8% vs BAU –; within campaigns – (95% CI –) – no interval" in markdown


@pytest.mark.parametrize("summary", [
    {}, None, {"countries": None, "pooled": None, "users": None, "failures": None},
    {"countries": {"MLA": {}}}, {"countries": {"MLA": {"decisions": None, "groups": None}}},
    {"countries": {"MLA": {"groups": {"bau": None, "bandit": {"open_rate": "n/a"}}, "by_week": "?"}}},
    {"pooled": {"ate_vs_holdout": None, "fx_usd_per_unit": None}, "countries": []},
    {"seed": 1, "failures": ["MLB 2026-09-03: dbt failed"], "countries": {"MLA": {"oracle": {}}}},
], ids=["empty", "none", "nulls", "empty-country", "null-country-parts", "junk-values", "junk-pooled",
        "failure-and-empty-oracle"])
def test_degenerate_summaries_never_raise(summary: dict | None, tmp_path: Path) -> None:
    html = render_html(summary, tmp_path / "r.html").read_text(encoding="utf-8")  # type: ignore[arg-type]
    assert html.rstrip().endswith("</html>")
    assert isinstance(render_markdown(summary), str)  # type: ignore[arg-type]
    plot_files(summary, tmp_path / "plots")  # type: ignore[arg-type]


def test_single_country_report_as_the_daily_asset_writes_it(tmp_path: Path) -> None:
    """The daily report holds one country, no pooled section, ledger rows without a group, registry evidence."""
    mlb = full_summary()["countries"]["MLB"]
    mlb["budget"] = [{"campaign_id": "c000", "budget": 125000.0, "committed": 40500.5, "remaining": 84499.5,
                      "pace": 0.7, "spent_share": 0.324, "burn_ratio": 0.463}]
    mlb["models"] = {"serving_model": "pushgrowth-bandit-MLB v4", "versions": 5, "promotions": 3, "rejections": 2,
                     "ope_serving_dr": 0.0912, "ope_difference_ci_low": 0.0031}
    summary = {"generated_at": "2026-11-24T15:00:00+00:00", "as_of": "2026-09-21", "countries": {"MLB": mlb}}
    html = render_html(summary, tmp_path / "r.html", title="pushgrowth MLB 2026-09-21").read_text(encoding="utf-8")
    assert "<title>pushgrowth MLB 2026-09-21</title>" in html and "as of 2026-09-21" in html
    assert '<section id="pooled">' not in html
    budget = html[html.index("<h3>Budget"):]
    budget = budget[:budget.index("</table>")]
    assert "<th>group</th>" not in budget
    for cell in ("84,499.50 BRL", "32.4%", "70.0%", "0.46×"):
        assert f">{cell}</td>" in budget
    assert "pushgrowth-bandit-MLB v4 (3 promotions, 2 rejections)" in html
    assert ">ope serving dr</td>" in html and ">0.0912</td>" in html
    markdown = render_markdown(summary)
    assert markdown.index("### MLB (BRL)") < markdown.index("- bandit open rate 9.1% vs BAU 7.5%")
    assert "### All countries" not in markdown and "Top 10 campaigns by decisions:" in markdown


def test_failures_are_shown(tmp_path: Path) -> None:
    summary = {"failures": ["MLB 2026-09-03: dbt failed"]}
    assert "1 failed run" in render_html(summary, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "1 failed run" in render_markdown(summary)


def test_a_summary_that_is_not_a_mapping_is_a_caller_bug(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="mapping"):
        render_html(["not", "a", "summary"], tmp_path / "r.html")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------------------


def test_markdown_has_verdict_lines_and_group_tables_and_stays_short() -> None:
    markdown = render_markdown(full_summary())
    assert len(markdown) < 6000
    assert len(markdown) <= MARKDOWN_BUDGET
    assert "- bandit open rate 9.1% vs BAU 7.5%; within campaigns +1.6 pp (95% CI +1.1 to +2.1) ✓ above zero" in markdown
    assert "- bandit open rate 6.9% vs BAU 7.0%; within campaigns -0.1 pp (95% CI -0.6 to +0.4) ✗ includes zero" in markdown
    pooled_bau = "- BAU vs holdout (pooled ATE, net revenue per user): +0.05 USD (95% CI +0.01 to +0.09)"
    assert f"{pooled_bau} ✓ above zero" in markdown
    difference = "- bandit minus BAU (pooled, net revenue per user): +0.04 USD (95% CI -0.01 to +0.09)"
    assert f"{difference} ✗ includes zero" in markdown
    assert "✓ shrank" in markdown and "✗ did not shrink" in markdown
    for heading in ("### All countries (USD)", "### MLA (ARS)", "### MLB (BRL)", "### MLM (MXN)"):
        assert heading in markdown
    # A blank line before each table: in GitHub-flavoured Markdown a table right after a list item is swallowed.
    header = "|group|decisions|sends|opens|open rate|conversions|net revenue per user|"
    assert f"shrank\n\n{header}\n|---|--:|" in markdown
    assert "|bandit|5,611|9,100|828|9.1%|230|11.02 BRL|" in markdown
    assert "data:image" not in markdown and "![" not in markdown and "http" not in markdown


def test_markdown_sheds_campaign_rows_to_fit() -> None:
    roomy = render_markdown({"countries": {"MLB": full_summary()["countries"]["MLB"]}}, max_campaigns=5)
    assert "Top 5 campaigns by decisions" in roomy and "|c039|bandit|" in roomy
    crowded = render_markdown(full_summary(), max_campaigns=100)
    assert len(crowded) <= MARKDOWN_BUDGET
    none = render_markdown(full_summary(), max_campaigns=0)
    assert "campaigns by decisions" not in none and "omitted" not in none


def test_negative_zero_is_not_shown() -> None:
    summary = {"countries": {"MLB": {"currency": "BRL", "groups": {"bau": {"open_rate": 0.07}},
                                     "lift_bandit_vs_bau": {"open_rate": interval(-0.0001, -0.0004, 0.0002)}}}}
    assert "+0.0 pp (95% CI +0.0 to +0.0)" in render_markdown(summary)


def test_a_failing_verdict_says_what_the_experiment_could_detect():
    summary = full_summary()
    summary["pooled"]["difference_bandit_minus_bau"] = interval(0.0042, -0.0058, 0.0142, n=501_252)
    summary["pooled"]["sensitivity"] = {"difference_bandit_minus_bau": {
        "mde": 0.0143, "power_target": 0.8, "expected": 0.0043, "power": 0.13, "decisions_multiple": 11.0,
        "decisions_needed": 5_513_715}}
    summary["countries"]["MLB"]["sensitivity"] = {
        "open_rate": {"mde": 0.0038, "power_target": 0.8, "expected": 0.0116, "power": 0.99,
                      "decisions_multiple": 0.11, "decisions_needed": 13_804},
        "net_revenue_per_user": {"mde": 0.099, "power_target": 0.8, "expected": -0.01, "power": 0.01,
                                 "decisions_multiple": None, "decisions_needed": None}}
    markdown = render_markdown(summary)
    assert ("- bandit minus BAU (pooled, net revenue per user): +0.0042 USD (95% CI -0.0058 to +0.0142); "
            "detectable from +0.0143 USD (80% power); the oracle expects +0.0043 USD: power 13%, 11.0× the "
            "decisions for 80% ✗ includes zero") in markdown
    assert ("within campaigns +0.47 BRL (95% CI -0.05 to +0.99); detectable from +0.10 BRL (80% power); the "
            "oracle expects -0.01 BRL: power 1%, not detectable at any size ✗") in markdown
    # a verdict above zero needs no note
    assert "+1.6 pp (95% CI +1.1 to +2.1) ✓ above zero" in markdown
    report = _html(summary)
    assert "Sensitivity: what the experiment can detect" in report
    assert "5,513,715" in report and "11.0×" in report and "13,804" in report


def test_an_underpowered_verdict_above_zero_says_how_much_it_likely_overstates():
    summary = full_summary()
    summary["pooled"]["difference_bandit_minus_bau"] = interval(0.0176, 0.0075, 0.0277, n=501_054)
    summary["pooled"]["sensitivity"] = {"difference_bandit_minus_bau": {
        "mde": 0.0144, "power_target": 0.8, "expected": 0.0073, "power": 0.29, "exaggeration": 1.81,
        "decisions_multiple": 3.9, "decisions_needed": 1_963_631}}
    summary["countries"]["MLB"]["sensitivity"] = {
        "open_rate": {"mde": 0.0038, "power_target": 0.8, "expected": 0.0116, "power": 0.99, "exaggeration": 1.0,
                      "decisions_multiple": 0.11, "decisions_needed": 13_804}}
    markdown = render_markdown(summary)
    assert ("- bandit minus BAU (pooled, net revenue per user): +0.0176 USD (95% CI +0.0075 to +0.0277); the oracle "
            "expects +0.0073 USD: power 29%, so an estimate shown above zero overstates it 1.8× on average ✓ above "
            "zero") in markdown
    # a well-powered verdict above zero carries nothing
    assert "+1.6 pp (95% CI +1.1 to +2.1) ✓ above zero" in markdown
    report = _html(summary)
    assert "overstated" in report and "1.8×" in report


def test_the_cli_table_caption_warns_of_an_underpowered_pooled_difference():
    from pushgrowth.cli import _results_table

    summary = full_summary()
    summary["pooled"]["difference_bandit_minus_bau"] = interval(0.0176, 0.0075, 0.0277, n=501_054)
    sens = {"mde": 0.0144, "power_target": 0.8, "expected": 0.0073, "power": 0.29, "exaggeration": 1.81,
            "decisions_multiple": 3.9, "decisions_needed": 1_963_631}
    summary["pooled"]["sensitivity"] = {"difference_bandit_minus_bau": sens}
    assert _results_table(summary).caption == ("pooled bandit - bau, the oracle expects +0.0073 USD: power 29%, so "
                                               "an estimate shown above zero overstates it 1.8× on average")
    summary["pooled"]["sensitivity"] = {"difference_bandit_minus_bau": {**sens, "expected": 0.03, "power": 0.99}}
    assert _results_table(summary).caption is None
    summary["pooled"]["difference_bandit_minus_bau"] = interval(0.0042, -0.0058, 0.0142, n=501_252)
    assert _results_table(summary).caption.startswith("pooled bandit - bau, detectable from +0.0144 USD")


def _html(summary: dict) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return render_html(summary, Path(tmp) / "r.html").read_text()
