"""dbt inside Dagster: partition vars, lineage, exact re-runs, tests as checks, the Parquet hand-off."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from pushgrowth.campaigns import load_catalog
from pushgrowth.storage.catalog import publish
from pushgrowth.definitions import defs
from pushgrowth.domain import ATTRIBUTION_DAYS, COUPON_VALIDITY_DAYS, MATURITY_DAYS, PLAN_DAYS, TONES
from pushgrowth.home import Home
from pushgrowth.landing.zone import write_drop
from pushgrowth.storage import dataset
from pushgrowth.storage import lake as store
from pushgrowth.sim import World, WorldConfig
from pushgrowth.transform import DBT_PROJECT_DIR, dbt_vars

DAY1, DAY2 = dt.date(2026, 9, 1), dt.date(2026, 9, 2)


def test_dbt_vars_name_exactly_one_partition():
    assert dbt_vars("MLB", DAY2) == {"country": "MLB", "date": "2026-09-02"}
    with pytest.raises(ValueError, match="site code"):
        dbt_vars("mlb", DAY2)


def test_dbt_windows_match_the_domain_constants():
    import yaml

    project_vars = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    assert project_vars["attribution_days"] == ATTRIBUTION_DAYS
    assert project_vars["outcome_window_days"] == COUPON_VALIDITY_DAYS
    assert project_vars["maturity_days"] == MATURITY_DAYS and project_vars["plan_days"] == PLAN_DAYS
    assert tuple(project_vars["tones"]) == TONES


def test_lineage_runs_from_raw_extracts_to_the_marts():
    graph = defs.resolve_asset_graph()
    upstream = {k.to_user_string() for k in graph.get(dg.AssetKey("user_features")).parent_keys}
    assert {"lifecycle_segments", "int_user_activity_daily", "stg_users"} <= upstream
    assert graph.get(dg.AssetKey("stg_orders")).parent_keys == {dg.AssetKey("raw_orders")}
    assert graph.get(dg.AssetKey("user_features")).group_name == "marts"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two days of MLA loaded and transformed through the real jobs, over a temporary home."""
    home = Home.from_env(tmp_path_factory.mktemp("home"))
    world = World(WorldConfig.build(("MLA",), users=250, seed=3))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PUSHGROWTH_HOME", str(home.root))
        instance = dg.DagsterInstance.ephemeral()
        publish(load_catalog(), home.lake)  # what catalog_job does when the catalog sensor first ticks
        results = {}
        for day in (DAY1, DAY2):
            write_drop(home.landing, "MLA", day, world.step()["MLA"])
            key = dg.MultiPartitionKey({"country": "MLA", "date": day.isoformat()})
            assert defs.resolve_job_def("raw_extracts_job").execute_in_process(partition_key=key,
                                                                               instance=instance).success
            results[day] = defs.resolve_job_def("daily_refresh_job").execute_in_process(partition_key=key,
                                                                                        instance=instance)
        yield home, instance, results


def test_each_partition_builds_and_hands_its_marts_to_the_lake(built):
    home, _, results = built
    assert all(r.success for r in results.values())
    import duckdb

    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        audience = con.sql(
            "select count(*), count(distinct campaign_id), min(decision_date) from audiences").fetchall()[0]
    assert audience[0] > 0 and audience[1] >= 5 and audience[2] == DAY1 + dt.timedelta(days=1)
    for day in (DAY1, DAY2):
        features = pq.read_table(store.partition_path(home.lake, dataset("user_features"), "MLA", day))
        users = pq.read_table(store.partition_path(home.lake, dataset("raw_users"), "MLA", day))
        assert features.num_rows == users.num_rows
        assert set(features.column("segment").to_pylist()) <= {"new", "active", "at_risk", "dormant", "churned"}


def test_dbt_tests_run_as_asset_checks(built):
    _, _, results = built
    evaluations = results[DAY2].get_asset_check_evaluations()
    assert len(evaluations) >= 30
    assert all(e.passed for e in evaluations)
    assert any(e.asset_key == dg.AssetKey("user_features") for e in evaluations)


def test_rerunning_a_partition_replaces_exactly_its_rows(built):
    home, instance, _ = built
    import duckdb

    def snapshot():
        with duckdb.connect(str(home.warehouse), read_only=True) as con:
            return {d: con.sql(f"select * from user_features where date = '{d}' order by user_id").fetchall()
                    for d in (DAY1, DAY2)}

    before = snapshot()
    key = dg.MultiPartitionKey({"country": "MLA", "date": DAY2.isoformat()})
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PUSHGROWTH_HOME", str(home.root))
        assert defs.resolve_job_def("daily_refresh_job").execute_in_process(partition_key=key,
                                                                            instance=instance).success
    assert snapshot() == before
    assert len(before[DAY2]) > 0


def test_dbt_docs_generate_works(built):
    home, _, _ = built
    dbt = Path(sys.executable).with_name("dbt")
    out = subprocess.run([str(dbt), "docs", "generate", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
                          str(DBT_PROJECT_DIR), "--target-path", str(home.root / "dbt_docs")],
                         env={**os.environ, "PUSHGROWTH_HOME": str(home.root)}, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:]
    assert (home.root / "dbt_docs" / "catalog.json").exists()


def test_dbt_unit_tests_pass(built):
    """Partition builds skip dbt unit tests (they test SQL logic, not data); the suite runs them here."""
    home, _, _ = built
    dbt = Path(sys.executable).with_name("dbt")
    out = subprocess.run([str(dbt), "test", "--select", "test_type:unit", "--project-dir", str(DBT_PROJECT_DIR),
                          "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(home.root / "dbt_unit")],
                         env={**os.environ, "PUSHGROWTH_HOME": str(home.root)}, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:]
    assert "PASS=4" in out.stdout


def test_data_tests_check_only_the_partition_built(built):
    """The partition filter of data tests is applied when they compile (macros/tests.sql), not at parse time."""
    home, _, _ = built
    compiled = next((home.dbt / "target" / "run").rglob("unique_decision_log_trace_id.sql")).read_text()
    assert f"country = 'MLA' and date = date '{DAY2.isoformat()}'" in compiled


def test_a_subset_of_the_dbt_assets_builds_only_what_was_selected(built):
    """Materializing one model in the UI runs dbt with that selection (and its tests), not the whole project."""
    home, instance, _ = built
    key = dg.MultiPartitionKey({"country": "MLA", "date": DAY2.isoformat()})
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("lifecycle_segments")})
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PUSHGROWTH_HOME", str(home.root))
        result = job.execute_in_process(partition_key=key, instance=instance)
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {dg.AssetKey("lifecycle_segments")}
    checks = {e.asset_key for e in result.get_asset_check_evaluations()}
    assert checks == {dg.AssetKey("lifecycle_segments")}
