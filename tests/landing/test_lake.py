"""The lake: writing a partition replaces exactly that partition and nothing else."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pushgrowth.lake import partition_dir, read_partition, write_partition

DAY = dt.date(2026, 9, 1)
NEXT = DAY + dt.timedelta(days=1)


def files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_write_partition_replaces_exactly_one_partition(tmp_path, extracts):
    lake = tmp_path / "lake"
    users_a, users_b = extracts["MLA"]["users"], extracts["MLB"]["users"]
    path = write_partition(lake, "raw/users", "MLA", DAY, users_a)
    write_partition(lake, "raw/users", "MLB", DAY, users_b)
    write_partition(lake, "raw/users", "MLA", NEXT, users_a)
    assert path == partition_dir(lake, "raw/users", "MLA", DAY) / "part-0.parquet"
    before = files(lake)

    smaller = users_a.slice(0, 5)
    write_partition(lake, "raw/users", "MLA", DAY, smaller)

    after = files(lake)
    assert set(after) == set(before) == {
        "raw/users/country=MLA/date=2026-09-01/part-0.parquet",
        "raw/users/country=MLA/date=2026-09-02/part-0.parquet",
        "raw/users/country=MLB/date=2026-09-01/part-0.parquet",
    }
    for other in ("raw/users/country=MLA/date=2026-09-02/part-0.parquet",
                  "raw/users/country=MLB/date=2026-09-01/part-0.parquet"):
        assert after[other] == before[other]
    rewritten = read_partition(lake, "raw/users", "MLA", DAY)
    assert rewritten.num_rows == 5
    assert rewritten.equals(smaller)
    assert read_partition(lake, "raw/users", "MLB", DAY).equals(users_b)


def test_read_missing_partition_names_it(tmp_path, extracts):
    lake = tmp_path / "lake"
    write_partition(lake, "raw/orders", "MLA", DAY, extracts["MLA"]["orders"])
    with pytest.raises(FileNotFoundError, match=r"partition MLA\|2026-09-02 of raw/orders") as err:
        read_partition(lake, "raw/orders", "MLA", NEXT)
    assert str(partition_dir(lake, "raw/orders", "MLA", NEXT)) in str(err.value)


def test_failed_write_keeps_previous_content_and_leaves_no_staging_folder(tmp_path, extracts):
    """The lake is left exactly as it was: no hidden `.date=...tmp` staging folder next to the partitions."""
    lake = tmp_path / "lake"
    orders = extracts["MLA"]["orders"]
    write_partition(lake, "raw/orders", "MLA", DAY, orders)
    before = files(lake)
    schema = pa.schema([pa.field("order_id", pa.int64(), nullable=False)])
    # nulls in a required field: Parquet refuses to write them
    unwritable = pa.Table.from_arrays([pa.array([1, None], pa.int64())], schema=schema)

    with pytest.raises(pa.ArrowInvalid):
        write_partition(lake, "raw/orders", "MLA", DAY, unwritable)

    assert files(lake) == before
    assert [p.name for p in (lake / "raw/orders/country=MLA").iterdir()] == ["date=2026-09-01"]
    assert pq.read_table(partition_dir(lake, "raw/orders", "MLA", DAY) / "part-0.parquet").equals(orders)


def test_staging_happens_outside_the_dataset_so_readers_never_see_it(tmp_path, extracts, monkeypatch):
    """A reader globbing `<dataset>/*/*/*.parquet` while a write is under way sees only whole partitions."""
    lake = tmp_path / "lake"
    seen = []
    real_write = pq.write_table

    def spy(table, where, **kwargs):
        seen.append(sorted(str(p.relative_to(lake)) for p in lake.glob("raw/orders/*/*/*.parquet")))
        return real_write(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", spy)
    write_partition(lake, "raw/orders", "MLA", DAY, extracts["MLA"]["orders"])
    write_partition(lake, "raw/orders", "MLA", DAY, extracts["MLA"]["orders"])
    assert seen == [[], ["raw/orders/country=MLA/date=2026-09-01/part-0.parquet"]]
    assert not any((lake / ".scratch").iterdir())
