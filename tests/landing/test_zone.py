"""The landing zone: drops are written table-first and marker-last, and read back checked against the contract."""

import datetime as dt
import hashlib
import json
import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pushgrowth.landing import zone
from pushgrowth.landing.contract import MARKER, TABLES
from pushgrowth.landing.zone import loaded_schema, ExtractError, list_drops, read_table, write_drop

DAY = dt.date(2026, 9, 1)


def snapshot(root):
    """sha256 and mtime of every file under `root` (hidden temporary files included)."""
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_table_round_trips_with_the_contract_schema(drop, extracts):
    for name, table_def in TABLES.items():
        table = read_table(drop, name)
        assert table.schema.equals(loaded_schema(table_def)), name  # contract types, nullability relaxed
        assert table.cast(table_def.schema).equals(extracts["MLA"][name]), name
    assert read_table(drop, "users").num_rows == 180
    assert read_table(drop, "sessions").num_rows == 78


def test_marker_lists_rows_and_sha256_of_every_file(drop, extracts):
    manifest = json.loads(drop.marker.read_text())
    assert manifest["country"] == "MLA" and manifest["date"] == "2026-09-01"
    assert set(manifest["files"]) == {t.file_name for t in TABLES.values()}
    for name, table_def in TABLES.items():
        entry = manifest["files"][table_def.file_name]
        assert entry["rows"] == extracts["MLA"][name].num_rows
        assert entry["sha256"] == hashlib.sha256((drop.path / table_def.file_name).read_bytes()).hexdigest()
    assert sorted(p.name for p in drop.path.iterdir()) == sorted([MARKER, *(t.file_name for t in TABLES.values())])


def test_marker_is_written_last_and_removed_first_on_redelivery(landing, extracts, monkeypatch):
    write_drop(landing, "MLA", DAY, extracts["MLA"])
    renames = []
    real_replace = os.replace

    def recording_replace(src, dst):
        renames.append((os.path.basename(dst), (landing / "MLA" / "2026-09-01" / MARKER).exists()))
        real_replace(src, dst)

    monkeypatch.setattr(zone.os, "replace", recording_replace)
    write_drop(landing, "MLA", DAY, extracts["MLB"])
    assert [name for name, _ in renames[:-1]] == [t.file_name for t in TABLES.values()]
    assert renames[-1][0] == MARKER
    assert not any(marker_present for _, marker_present in renames), "old marker still there while rewriting"


def test_list_drops_returns_only_complete_drops(landing, extracts):
    write_drop(landing, "MLB", DAY, extracts["MLB"])
    write_drop(landing, "MLA", DAY, extracts["MLA"])
    partial = write_drop(landing, "MLA", DAY + dt.timedelta(days=1), extracts["MLA"])
    partial.marker.unlink()
    (landing / "MLA" / "not-a-date").mkdir()
    (landing / "README.txt").write_text("not a country folder")

    assert [(d.country, d.date) for d in list_drops(landing)] == [("MLA", DAY), ("MLB", DAY)]
    everything = list_drops(landing, complete_only=False)
    assert [(d.country, d.date, d.complete) for d in everything] == [
        ("MLA", DAY, True), ("MLA", DAY + dt.timedelta(days=1), False), ("MLB", DAY, True)]
    assert list_drops(landing / "missing") == []


def test_incomplete_drop_is_not_read(drop):
    drop.marker.unlink()
    with pytest.raises(ExtractError, match="incomplete") as err:
        read_table(drop, "users")
    assert str(drop.path) in str(err.value)


def _without(table: pa.Table, column: str) -> pa.Table:
    return table.drop_columns([column])


def _with_column(table: pa.Table, column: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(column), column, values)


def _missing(drop, tamper, extracts):
    (drop.path / "orders.parquet").unlink()
    return "orders", None, "file is missing"


def _truncated(drop, tamper, extracts):
    path = drop.path / "orders.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return "orders", None, "sha256"


def _garbage(drop, tamper, extracts):
    tamper(drop, "orders.parquet", b"this is not a parquet file" * 40)
    return "orders", None, "unreadable Parquet file"


def _missing_column(drop, tamper, extracts):
    tamper(drop, "orders.parquet", _without(extracts["MLA"]["orders"], "gmv"))
    return "orders", "gmv", "missing column"


def _wrong_type(drop, tamper, extracts):
    sessions = extracts["MLA"]["sessions"]
    tamper(drop, "sessions.parquet", _with_column(sessions, "user_id", pa.array(["abc"] * sessions.num_rows)))
    return "sessions", "user_id", "expected int64"


def _fewer_rows(drop, tamper, extracts):
    path = drop.path / "users.parquet"
    pq.write_table(extracts["MLA"]["users"].slice(0, 10), path)
    manifest = json.loads(drop.marker.read_text())
    manifest["files"]["users.parquet"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    drop.marker.write_text(json.dumps(manifest))  # the row count still says 180
    return "users", None, "10 rows, manifest says 180"


@pytest.mark.parametrize("corrupt", [_missing, _truncated, _garbage, _missing_column, _wrong_type, _fewer_rows], ids=lambda f: f.__name__.strip("_"))
def test_bad_extract_raises_naming_file_and_column(drop, tamper, extracts, corrupt):
    name, column, reason = corrupt(drop, tamper, extracts)
    with pytest.raises(ExtractError) as err:
        read_table(drop, name)
    message = str(err.value)
    assert str(drop.path / f"{name}.parquet") in message
    assert reason in message
    if column:
        assert repr(column) in message
    # the other tables of the drop are still readable
    assert read_table(drop, "opt_outs").num_rows == 0


def test_nulls_in_a_key_column_load_and_are_left_to_the_quality_checks(drop, tamper, extracts):
    """Structure fails the load; content (nulls, ranges) is what the blocking Great Expectations checks judge."""
    orders = extracts["MLA"]["orders"]
    user_id = pa.array([None] + orders.column("user_id").to_pylist()[1:], pa.int64())
    tamper(drop, "orders.parquet", _with_column(orders, "user_id", user_id))
    loaded = read_table(drop, "orders")
    assert loaded.column("user_id").null_count == 1
    assert all(field.nullable for field in loaded.schema)


def test_unreadable_marker_names_the_marker(drop):
    drop.marker.write_text("{not json")
    with pytest.raises(ExtractError, match="unreadable completion marker") as err:
        read_table(drop, "users")
    assert str(drop.marker) in str(err.value)


def test_safe_widening_is_accepted_and_extra_columns_dropped(drop, tamper, extracts):
    sessions = extracts["MLA"]["sessions"]
    narrow = _with_column(sessions, "user_id", sessions.column("user_id").cast(pa.int32()))
    narrow = narrow.append_column("debug_flag", pa.array([True] * sessions.num_rows))
    tamper(drop, "sessions.parquet", narrow)
    table = read_table(drop, "sessions")
    assert table.schema.equals(loaded_schema(TABLES["sessions"]))
    assert table.cast(TABLES["sessions"].schema).equals(sessions)


def test_unsafe_narrowing_is_rejected(drop, tamper, extracts):
    users = extracts["MLA"]["users"]
    huge = pc.add(users.column("lifetime_orders").cast(pa.int64()), 2**40)
    tamper(drop, "users.parquet", _with_column(users, "lifetime_orders", huge))
    with pytest.raises(ExtractError, match="'lifetime_orders' has type int64, expected int32"):
        read_table(drop, "users")


def test_reading_never_modifies_the_landing_zone(landing, extracts, tamper):
    good = write_drop(landing, "MLA", DAY, extracts["MLA"])
    bad = write_drop(landing, "MLB", DAY, extracts["MLB"])
    tamper(bad, "orders.parquet", _without(extracts["MLB"]["orders"], "gmv"))
    incomplete = write_drop(landing, "MLB", DAY + dt.timedelta(days=1), extracts["MLB"])
    incomplete.marker.unlink()
    before = snapshot(landing)

    for drop in list_drops(landing, complete_only=False):
        for name in TABLES:
            try:
                read_table(drop, name)
            except ExtractError:
                pass
    assert read_table(good, "users").num_rows == 180
    with pytest.raises(ExtractError):
        read_table(bad, "orders")
    with pytest.raises(ExtractError):
        read_table(incomplete, "orders")
    good.digest()

    assert snapshot(landing) == before
