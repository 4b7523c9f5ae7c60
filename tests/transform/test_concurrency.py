"""DuckDB allows one writer process per file: three countries' daily refreshes started at once, in three
processes, all succeed (the warehouse lock makes them take turns) instead of failing on DuckDB's lock."""

import datetime as dt
import multiprocessing
import os
import traceback
from concurrent.futures import ProcessPoolExecutor, wait

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


HANG_GUARD_SECONDS = 600
"""Not a speed target (the refreshes take well under a minute): a bound after which a stuck worker fails the test
with the countries that did not finish (before pytest-timeout's 900 s), instead of holding the suite until CI's
time runs out."""


def _refresh(root: str, dagster_home: str, country: str) -> tuple[str, bool, str]:
    """One country's raw load and daily refresh; whatever happens in the worker (even SystemExit) comes back."""
    try:
        return _refresh_in_worker(root, dagster_home, country)
    except BaseException:  # noqa: BLE001 - the worker must answer, or the pool waits for it
        return country, False, traceback.format_exc()


def _refresh_in_worker(root: str, dagster_home: str, country: str) -> tuple[str, bool, str]:
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
    # a ProcessPoolExecutor, not a Pool: a worker that dies fails its future (BrokenProcessPool) instead of
    # leaving the caller waiting for a result that never comes
    pool = ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn"))
    futures = {pool.submit(_refresh, str(home.root), str(dagster_home), c): c for c in COUNTRIES}
    _, stuck = wait(futures, timeout=HANG_GUARD_SECONDS)
    if stuck:  # a stuck worker would hold shutdown() forever
        for process in list(pool._processes.values()):
            process.kill()
    pool.shutdown(wait=not stuck, cancel_futures=True)
    assert not stuck, f"refreshes still running after {HANG_GUARD_SECONDS} s: {sorted(futures[f] for f in stuck)}"
    outcomes = [f.result() for f in futures]
    assert all(ok for _, ok, _ in outcomes), outcomes
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        countries = {r[0] for r in con.sql("select distinct country from user_features").fetchall()}
    assert countries == set(COUNTRIES)
