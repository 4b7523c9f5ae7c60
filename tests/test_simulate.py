"""The whole loop in CI: the World's drops through the real sensors and jobs, assignments delivered back to the
World, reports written, any push traceable, and nothing ever sent twice."""

import json

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pushgrowth.cli import app
from pushgrowth.delivery import FileDelivery
from pushgrowth.home import Home
from pushgrowth.lake import partition_dir
from pushgrowth.sim import World, WorldConfig
from pushgrowth.simulate import simulate

CONFIG = WorldConfig.build(("MLA", "MLB"), users=300, seed=4)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:  # simulate points DAGSTER_HOME and PUSHGROWTH_HOME at the home
        home = Home.from_env(tmp_path_factory.mktemp("home"))
        env.setenv("DAGSTER_HOME", str(home.dagster))  # recorded, so both are restored afterwards
        env.setenv("PUSHGROWTH_HOME", str(home.root))
        result = simulate(home, CONFIG, days=3)
        yield home, result


def test_each_day_runs_the_whole_chain_once_per_country(run):
    home, result = run
    assert not result.failures
    first = result.days[0].runs
    assert first[0] == "catalog_job"
    for country in ("MLA", "MLB"):
        key = f"{country}|2026-09-01"
        assert [r for r in first if country in r] == [
            key, f"daily_refresh_job {key}", f"model_job {country}", f"assignment_job {key}"]
    instance = dg.DagsterInstance.get()
    records = instance.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": "landing_zone_sensor"}))
    assert len(records) == 6 and len({r.dagster_run.tags["dagster/run_key"] for r in records}) == 6
    users = pq.read_table(partition_dir(home.lake, "raw/users", "MLB", result.days[1].date) / "part-0.parquet")
    assert users.num_rows == result.days[1].rows["MLB"]["users"]


def test_plans_reach_the_world_and_come_back_in_the_extracts(run):
    home, result = run
    for day in result.days:
        for country in ("MLA", "MLB"):
            assert day.decisions[country] > 0 and day.pushes[country] > 0
    # pushes planned on day 1 for day 2 were attempted by the World and appear in day 2's send log
    outbox = pd.read_parquet(FileDelivery(home.outbox).path("MLB", result.days[1].date))
    sends = pq.read_table(partition_dir(home.lake, "raw/push_sends", "MLB", result.days[1].date)
                          / "part-0.parquet").to_pandas()
    due = outbox[outbox["send_date"].dt.date == result.days[1].date]
    assert len(due) > 0 and set(due["idempotency_key"]) <= set(sends["idempotency_key"])


def test_redelivering_an_outbox_sends_nothing_twice(run):
    home, result = run
    world = World.load(home.world)
    outbox = pd.read_parquet(FileDelivery(home.outbox).path("MLA", result.days[-1].date))
    receipt = world.deliver(outbox)
    assert receipt.accepted == 0 and receipt.duplicates == len(outbox)


def test_rerunning_assignments_rebuilds_the_identical_outbox(run):
    home, result = run
    from pushgrowth.definitions import defs

    day = result.days[-1].date
    path = FileDelivery(home.outbox).path("MLB", day + pd.Timedelta(days=1))
    before = pd.read_parquet(path)
    key = dg.MultiPartitionKey({"country": "MLB", "date": day.isoformat()})
    outcome = defs.resolve_job_def("assignment_job").execute_in_process(partition_key=key,
                                                                       instance=dg.DagsterInstance.get())
    assert outcome.success
    pd.testing.assert_frame_equal(pd.read_parquet(path), before)
    materialization = outcome.asset_materializations_for_node("push_outbox")[0]
    assert materialization.metadata["duplicates"].value == len(before)
    assert materialization.metadata["accepted"].value == 0


def test_summary_and_report_cover_every_country(run):
    home, result = run
    summary = json.loads((home.reports / "summary.json").read_text())
    assert summary["days"] == 3 and summary["failures"] == []
    assert summary["runs"] == sum(len(d.runs) for d in result.days)
    for country in ("MLA", "MLB"):
        data = summary["countries"][country]
        assert data["raw_rows"]["orders"] == sum(d.rows[country]["orders"] for d in result.days)
        assert set(data["groups"]) == {"holdout", "bau", "bandit"}
        assert data["groups"]["bandit"]["sends"] > 0 and data["groups"]["holdout"]["sends"] == 0
        assert {"bau", "bandit"} <= set(data["ate_vs_holdout"])
        assert {"open_rate", "net_revenue_per_user"} <= set(data["lift_bandit_vs_bau"])
        assert set(data["oracle"]["value"]) == {"holdout", "bau", "bandit"}
        assert data["oracle"]["regret_per_week"][0]["bandit"] >= 0
    html = (home.reports / "report.html").read_text()
    assert "MLA" in html and "MLB" in html and "data:image/png;base64," in html
    daily = home.reports / "MLB" / result.days[-1].date.isoformat()
    assert (daily / "report.html").exists() and (daily / "summary.json").exists()


def test_any_push_can_be_traced_end_to_end(run):
    home, result = run
    outbox = pd.read_parquet(FileDelivery(home.outbox).path("MLB", result.days[1].date))
    sent = outbox[outbox["send_date"].dt.date <= result.days[-1].date]  # the World has simulated those days
    bandit = sent[sent["group"] == "bandit"]
    trace_id = (bandit if len(bandit) else sent)["trace_id"].iloc[0]
    out = CliRunner().invoke(app, ["trace", trace_id, "--json"], env={"PUSHGROWTH_HOME": str(home.root)})
    assert out.exit_code == 0, out.output
    story = json.loads(out.output)
    assert story["trace_id"] == trace_id and story["decision"]["campaign_id"] == story["campaign"]["id"]
    assert story["outbox"] and story["deliveries"]
    if story["decision"]["group"] == "bandit":
        assert set(story["options"]["dimensions"]) == {"coupon", "template", "hour", "weekday", "frequency"}
    missing = CliRunner().invoke(app, ["trace", "pg-nope"], env={"PUSHGROWTH_HOME": str(home.root)})
    assert missing.exit_code == 1 and "no decision with trace id" in missing.output


def test_resume_continues_the_saved_world(run):
    home, _ = run
    more = simulate(home, CONFIG, days=1, resume=True)
    assert [r for r in more.days[0].runs if r.startswith("ML")] == ["MLA|2026-09-04", "MLB|2026-09-04"]


def test_every_stage_of_the_loop_is_timed_in_whichever_process_ran_it(run):
    from pushgrowth.timing import STAGES

    _, result = run
    timed = result.timings
    assert set(timed) <= set(STAGES)
    for stage in ("world", "sensors", "raw", "gx", "dbt", "budget", "assignments", "outbox", "report", "oracle",
                  "mlflow", "dagster", "summary"):
        assert timed.get(stage, 0) > 0, stage
    by_day = {}
    for day in result.days:
        for stage, seconds in day.timings.items():
            by_day[stage] = by_day.get(stage, 0) + seconds
    assert by_day["dbt"] == timed["dbt"] and "summary" not in by_day  # the final reports belong to no day
