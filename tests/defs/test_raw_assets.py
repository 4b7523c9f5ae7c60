"""raw_* assets: `dg.materialize` one country-day over a temporary home folder."""

import datetime as dt
import hashlib

import dagster as dg
import pyarrow.parquet as pq
import pytest

from pushgrowth.defs.extracts.assets import raw_extracts
from pushgrowth.landing.contract import TABLES
from pushgrowth.landing.zone import read_table, write_drop
from pushgrowth.storage import dataset
from pushgrowth.storage import lake as store

DAY = dt.date(2026, 9, 1)
MLA_DAY = dg.MultiPartitionKey({"country": "MLA", "date": "2026-09-01"})
MLB_DAY = dg.MultiPartitionKey({"country": "MLB", "date": "2026-09-01"})


def materialize(resources, key, **kwargs):
    return dg.materialize([raw_extracts], resources=resources, partition_key=key, **kwargs)


def lake_file(home, table, country="MLA", date=DAY):
    return store.partition_path(home.lake, dataset(f"raw_{table}"), country, date)


def lake_files(home):
    return {str(p.relative_to(home.lake)): p.read_bytes() for p in sorted(home.lake.rglob("*")) if p.is_file()}


def landing_state(home):
    return {str(p.relative_to(home.landing)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(home.landing.rglob("*")) if p.is_file()}


def failure_message(result) -> str:
    (failure,) = result.get_step_failure_events()
    return failure.step_failure_data.error.message


def test_materialize_copies_every_table_with_row_counts(home, resources, extracts):
    drop = write_drop(home.landing, "MLA", DAY, extracts[DAY]["MLA"])
    landing_before = landing_state(home)

    result = materialize(resources, MLA_DAY)

    assert result.success
    row_counts = {ev.asset_key.path[-1]: ev.materialization.metadata["dagster/row_count"].value
                  for ev in result.get_asset_materialization_events()}
    # and, for a day nobody planned, its decisions: none (what starts the day's read-back in dbt)
    assert row_counts == {f"raw_{name}": t.num_rows for name, t in extracts[DAY]["MLA"].items()} | {"decisions": 0}
    assert row_counts["raw_users"] == 180 and row_counts["raw_sessions"] == 78
    for name in TABLES:
        assert pq.read_table(lake_file(home, name)).equals(read_table(drop, name)), name
    assert sorted(lake_files(home)) == sorted(f"raw/{name}/country=MLA/date=2026-09-01/part-0.parquet"
                                              for name in TABLES)
    assert landing_state(home) == landing_before


def test_rematerializing_is_idempotent_and_leaves_other_partitions_alone(home, resources, extracts):
    for country in ("MLA", "MLB"):
        write_drop(home.landing, country, DAY, extracts[DAY][country])
    assert materialize(resources, MLA_DAY).success
    assert materialize(resources, MLB_DAY).success
    first = {name: pq.read_table(lake_file(home, name)) for name in TABLES}
    mlb_before = {k: v for k, v in lake_files(home).items() if "country=MLB" in k}

    assert materialize(resources, MLA_DAY).success

    for name in TABLES:
        assert pq.read_table(lake_file(home, name)).equals(first[name]), name
    assert {k: v for k, v in lake_files(home).items() if "country=MLB" in k} == mlb_before
    assert len(lake_files(home)) == 2 * len(TABLES)


def test_redelivered_drop_replaces_the_partition(home, resources, extracts, other_extracts):
    write_drop(home.landing, "MLA", DAY, extracts[DAY]["MLA"])
    assert materialize(resources, MLA_DAY).success
    redelivered = {**other_extracts[DAY]["MLA"], "users": other_extracts[DAY]["MLA"]["users"].slice(0, 50)}
    assert not redelivered["sessions"].equals(extracts[DAY]["MLA"]["sessions"])
    drop = write_drop(home.landing, "MLA", DAY, redelivered)

    result = materialize(resources, MLA_DAY)

    assert result.success
    for name in TABLES:
        assert pq.read_table(lake_file(home, name)).equals(read_table(drop, name)), name
    assert pq.read_table(lake_file(home, "users")).num_rows == 50
    row_counts = {m.asset_key.path[-1]: m.metadata["dagster/row_count"].value
                  for m in result.asset_materializations_for_node("raw_extracts")}
    assert row_counts["raw_users"] == 50


def _drop_gmv(orders):
    return orders.drop_columns(["gmv"]), "'gmv'"


@pytest.mark.parametrize("previous_run", [False, True], ids=["new-partition", "existing-partition"])
@pytest.mark.parametrize("corrupt", [_drop_gmv], ids=["missing-column"])
def test_bad_extract_fails_the_run_and_writes_no_table(home, resources, extracts, tamper, corrupt, previous_run):
    drop = write_drop(home.landing, "MLA", DAY, extracts[DAY]["MLA"])
    if previous_run:
        assert materialize(resources, MLA_DAY).success
    before = lake_files(home)
    bad_orders, column = corrupt(extracts[DAY]["MLA"]["orders"])
    tamper(drop, "orders.parquet", bad_orders)

    result = materialize(resources, MLA_DAY, raise_on_error=False)

    assert not result.success
    message = failure_message(result)
    assert str(drop.path / "orders.parquet") in message and column in message
    assert result.get_asset_materialization_events() == []
    assert lake_files(home) == before
    if not previous_run:
        assert not home.lake.exists() or not any(home.lake.rglob("*.parquet"))


def test_drop_without_marker_fails_the_run(home, resources, extracts):
    drop = write_drop(home.landing, "MLA", DAY, extracts[DAY]["MLA"])
    drop.marker.unlink()

    result = materialize(resources, MLA_DAY, raise_on_error=False)

    assert not result.success
    message = failure_message(result)
    assert "marker missing" in message and str(drop.path) in message
    assert not home.lake.exists()


def test_partition_without_any_drop_fails_the_run(home, resources):
    result = materialize(resources, MLB_DAY, raise_on_error=False)
    assert not result.success
    assert "no complete drop for MLB 2026-09-01" in failure_message(result)
