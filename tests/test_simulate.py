"""The simulation driver runs the real sensor and job against a Dagster instance in the home folder."""

import json

import dagster as dg
import pyarrow.parquet as pq
import pytest

from pushgrowth.home import Home
from pushgrowth.lake import partition_dir
from pushgrowth.sim import WorldConfig
from pushgrowth.simulate import simulate


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:  # simulate points DAGSTER_HOME and PUSHGROWTH_HOME at the home
        home = Home.from_env(tmp_path_factory.mktemp("home"))
        env.setenv("DAGSTER_HOME", str(home.dagster))  # recorded, so both are restored afterwards
        env.setenv("PUSHGROWTH_HOME", str(home.root))
        result = simulate(home, WorldConfig.build(("MLA", "MLB"), users=300, seed=4), days=2)
        yield home, result


def test_each_drop_is_loaded_once_through_dagster(run):
    home, result = run
    assert not result.failures
    assert [d.runs for d in result.days] == [["catalog_job", "MLA|2026-09-01", "MLB|2026-09-01"],
                                            ["MLA|2026-09-02", "MLB|2026-09-02"]]
    instance = dg.DagsterInstance.get()
    records = instance.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": "landing_zone_sensor"}))
    assert len(records) == 4
    assert len({r.dagster_run.tags["dagster/run_key"] for r in records}) == 4
    users = pq.read_table(partition_dir(home.lake, "raw/users", "MLB", result.days[1].date) / "part-0.parquet")
    assert users.num_rows == result.days[1].rows["MLB"]["users"]


def test_summary_json_counts_what_was_delivered(run):
    home, result = run
    summary = json.loads((home.reports / "summary.json").read_text())
    assert summary["days"] == 2 and summary["runs"] == 5 and summary["failures"] == []
    orders = sum(d.rows["MLA"]["orders"] for d in result.days)
    assert summary["countries"]["MLA"]["raw_rows"]["orders"] == orders


def test_resume_continues_the_saved_world(run):
    home, _ = run
    more = simulate(home, WorldConfig.build(("MLA", "MLB"), users=300, seed=4), days=1, resume=True)
    assert [d.runs for d in more.days] == [["MLA|2026-09-03", "MLB|2026-09-03"]]
