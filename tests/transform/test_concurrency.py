"""DuckDB allows one writer process per file: three countries' daily refreshes started at once, in three
processes, all succeed (the warehouse lock makes them take turns) instead of failing on DuckDB's lock."""

import datetime as dt
import multiprocessing
import os

import dagster as dg
import duckdb
import pytest

from pushgrowth.campaigns import load_catalog
from pushgrowth.storage.catalog import publish
from pushgrowth.home import Home
from pushgrowth.landing.zone import write_drop
from pushgrowth.sim import World, WorldConfig

DAY = dt.date(2026, 9, 1)
COUNTRIES = ("MLA", "MLB", "MLM")


def _refresh(root: str, dagster_home: str, country: str) -> tuple[str, bool, str]:
    os.environ["PUSHGROWTH_HOME"] = root
    os.environ["DAGSTER_HOME"] = dagster_home
    from pushgrowth.definitions import defs

    key = dg.MultiPartitionKey({"country": country, "date": DAY.isoformat()})
    instance = dg.DagsterInstance.get()
    raw = defs.resolve_job_def("raw_extracts_job").execute_in_process(partition_key=key, instance=instance,
                                                                       raise_on_error=False)
    if not raw.success:
        return country, False, "raw load failed"
    result = defs.resolve_job_def("daily_refresh_job").execute_in_process(partition_key=key, instance=instance,
                                                                          raise_on_error=False)
    errors = [str(e.step_failure_data.error.message)[:300] for e in result.all_events if e.is_step_failure]
    return country, result.success, "; ".join(errors)


@pytest.mark.slow
def test_three_countries_refresh_at_once_without_a_lock_error(tmp_path, monkeypatch):
    home = Home(tmp_path / "home")
    world = World(WorldConfig.build(COUNTRIES, users=150, seed=9))
    for country, tables in world.step().items():
        write_drop(home.landing, country, DAY, tables)
    publish(load_catalog(), home.lake)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # the instance's SQLite schema is created once, as `pushgrowth simulate` does before it starts its workers:
    # the test is about the warehouse, not about three processes racing to create Dagster's tables
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    dg.DagsterInstance.get().dispose()
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        outcomes = pool.starmap(_refresh, [(str(home.root), str(dagster_home), c) for c in COUNTRIES])
    assert all(ok for _, ok, _ in outcomes), outcomes
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        countries = {r[0] for r in con.sql("select distinct country from user_features").fetchall()}
    assert countries == set(COUNTRIES)
