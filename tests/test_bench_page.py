"""The generated benchmarks page: the loop's stages by cost, the scale benchmarks, and bad input named."""

import json

from typer.testing import CliRunner

from pushgrowth.bench import page
from pushgrowth.cli import app

LOOP = {"benchmark": "loop", "users": 5000, "days": 2, "countries": ["MLA", "MLB"], "workers": 2, "seed": 7,
        "runs": 17, "failures": 0, "wall_seconds": 40.0, "seconds_per_country_day": 10.0, "stage_seconds": 70.0,
        "stages": {"dbt": {"seconds": 12.0, "share": 0.2}, "dagster": {"seconds": 30.0, "share": 0.5},
                   "oracle": {"seconds": 4.0, "share": 0.1}},
        "profile": None, "peak_rss_mb": 700.0, "date": "2026-12-03"}
ASSIGN = {"benchmark": "assign", "country": "MLM", "users": 1000000, "seconds": 43.9, "users_per_s": 22798,
          "peak_rss_mb": 2166.5, "joint_actions_per_campaign": 1200, "max_joint_actions": 3360, "campaigns": 10,
          "date": "2026-12-03"}


def test_the_page_lists_stages_by_cost_per_country_day_and_keeps_its_lines():
    text = page([LOOP, ASSIGN])
    rows = [line for line in text.splitlines() if line.startswith("| dagster") or line.startswith("| dbt")
            or line.startswith("| oracle")]
    assert [r.split(" | ")[0] for r in rows] == ["| dagster", "| dbt", "| oracle"]
    assert rows[0].startswith("| dagster | 30.0 | 50.0% | 7.50 | Dagster run overhead")  # 4 country-days
    assert "**10.00 s per simulated country-day**" in text
    assert "| `bench assign` | 1,000,000 | 43.9 | 2,166 |" in text
    assert json.dumps(LOOP, sort_keys=True) in text  # the page can be made again from itself


def test_a_line_that_is_not_json_is_named_with_its_file_and_line(tmp_path):
    results = tmp_path / "bench.jsonl"
    results.write_text(json.dumps(LOOP) + "\n\n{not json\n")
    out = CliRunner().invoke(app, ["bench", "page", str(results)])
    assert out.exit_code == 2
    assert f"{results}:3: not a JSON line" in out.output


def test_an_unknown_country_is_refused_with_the_countries_the_world_knows(tmp_path):
    for command in (["bench", "loop", "--countries", "MLA,XXX", "--days", "1", "--home", str(tmp_path / "h")],
                    ["simulate", "--countries", "XXX", "--days", "1"]):
        out = CliRunner().invoke(app, command, env={"PUSHGROWTH_HOME": str(tmp_path / "home")})
        assert out.exit_code == 2, out.output
        assert "['XXX']" in out.output and "MLA" in out.output and "MLB" in out.output
    assert not (tmp_path / "h").exists()  # refused before anything was created
