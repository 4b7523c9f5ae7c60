"""The lake: writing a partition replaces exactly that partition and nothing else."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pushgrowth.storage import dataset
from pushgrowth.storage import lake as store

DAY = dt.date(2026, 9, 1)
NEXT = DAY + dt.timedelta(days=1)


def files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_write_partition_replaces_exactly_one_partition(tmp_path, extracts):
    lake = tmp_path / "lake"
    users_a, users_b = extracts["MLA"]["users"], extracts["MLB"]["users"]
    path = store.write(lake, dataset("raw_users"), "MLA", DAY, users_a)
    store.write(lake, dataset("raw_users"), "MLB", DAY, users_b)
    store.write(lake, dataset("raw_users"), "MLA", NEXT, users_a)
    assert path == store.partition_path(lake, dataset("raw_users"), "MLA", DAY)
    before = files(lake)

    smaller = users_a.slice(0, 5)
    store.write(lake, dataset("raw_users"), "MLA", DAY, smaller)

    after = files(lake)
    assert set(after) == set(before) == {
        "raw/users/country=MLA/date=2026-09-01/part-0.parquet",
        "raw/users/country=MLA/date=2026-09-02/part-0.parquet",
        "raw/users/country=MLB/date=2026-09-01/part-0.parquet",
    }
    for other in ("raw/users/country=MLA/date=2026-09-02/part-0.parquet",
                  "raw/users/country=MLB/date=2026-09-01/part-0.parquet"):
        assert after[other] == before[other]
    rewritten = store.read(lake, dataset("raw_users"), "MLA", DAY)
    assert rewritten.num_rows == 5
    assert rewritten.equals(smaller)
    assert store.read(lake, dataset("raw_users"), "MLB", DAY).equals(users_b)


def test_read_missing_partition_names_it(tmp_path, extracts):
    lake = tmp_path / "lake"
    store.write(lake, dataset("raw_orders"), "MLA", DAY, extracts["MLA"]["orders"])
    with pytest.raises(FileNotFoundError, match=r"partition MLA\|2026-09-02 of raw_orders") as err:
        store.read(lake, dataset("raw_orders"), "MLA", NEXT)
    assert str(store.partition_path(lake, dataset("raw_orders"), "MLA", NEXT)) in str(err.value)


def test_failed_write_keeps_previous_content_and_leaves_no_staging_folder(tmp_path, extracts):
    """The lake is left exactly as it was: no hidden `.date=...tmp` staging folder next to the partitions."""
    lake = tmp_path / "lake"
    orders = extracts["MLA"]["orders"]
    store.write(lake, dataset("raw_orders"), "MLA", DAY, orders)
    before = files(lake)
    schema = pa.schema([pa.field("order_id", pa.int64(), nullable=False)])
    # nulls in a required field: Parquet refuses to write them
    unwritable = pa.Table.from_arrays([pa.array([1, None], pa.int64())], schema=schema)

    with pytest.raises(pa.ArrowInvalid):
        store.write(lake, dataset("raw_orders"), "MLA", DAY, unwritable)

    assert files(lake) == before
    assert [p.name for p in (lake / "raw/orders/country=MLA").iterdir()] == ["date=2026-09-01"]
    assert pq.read_table(store.partition_path(lake, dataset("raw_orders"), "MLA", DAY)).equals(orders)


def test_staging_happens_outside_the_dataset_so_readers_never_see_it(tmp_path, extracts, monkeypatch):
    """A reader globbing `<dataset>/*/*/*.parquet` while a write is under way sees only whole partitions."""
    lake = tmp_path / "lake"
    seen = []
    real_write = pq.write_table

    def spy(table, where, **kwargs):
        seen.append(sorted(str(p.relative_to(lake)) for p in lake.glob("raw/orders/*/*/*.parquet")))
        return real_write(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", spy)
    store.write(lake, dataset("raw_orders"), "MLA", DAY, extracts["MLA"]["orders"])
    store.write(lake, dataset("raw_orders"), "MLA", DAY, extracts["MLA"]["orders"])
    assert seen == [[], ["raw/orders/country=MLA/date=2026-09-01/part-0.parquet"]]
    assert not any((lake / ".scratch").iterdir())
