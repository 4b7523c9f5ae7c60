"""Reading and writing the lake's datasets (see `registry`): the only code that touches lake files.

Writing a partition replaces exactly that partition (write to a temporary folder, then swap), so a re-run
leaves the same files as the first run and other partitions untouched. Hive-style folder names let DuckDB and
dbt read a whole dataset with `read_parquet('<dataset>/*/*/*.parquet', hive_partitioning = true)`.

Every read is noted (`lineage.note`): an asset's materialization lists the assets whose data it read, which
the lineage test compares with the dependencies it declares.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pushgrowth.storage import lineage
from pushgrowth.storage.datasets import Dataset

SCRATCH = ".scratch"
PART = "part-0.parquet"


def _partitioned(dataset: Dataset) -> None:
    if not dataset.partitioned:
        raise TypeError(f"{dataset.name} is a file dataset, not partitioned by country and date")


def partition_path(lake: Path, dataset: Dataset, country: str, date: dt.date) -> Path:
    """The Parquet file of one (country, date) partition."""
    _partitioned(dataset)
    return Path(lake) / dataset.path / f"country={country}" / f"date={date.isoformat()}" / PART


def file_path(lake: Path, dataset: Dataset) -> Path:
    """The file of a file dataset."""
    if dataset.partitioned:
        raise TypeError(f"{dataset.name} is partitioned by country and date, not one file")
    return Path(lake) / dataset.path


def exists(lake: Path, dataset: Dataset, country: str | None = None, date: dt.date | None = None) -> bool:
    """Whether the partition (or the file dataset) exists. Not a read: nothing is noted."""
    if dataset.partitioned:
        if country is None or date is None:
            raise TypeError(f"exists({dataset.name}) needs a country and a date")
        return partition_path(lake, dataset, country, date).exists()
    return file_path(lake, dataset).exists()


def glob(lake: Path, dataset: Dataset) -> str:
    """The glob of every partition's file (for DuckDB's read_parquet)."""
    _partitioned(dataset)
    return str(Path(lake) / dataset.path / "*" / "*" / "*.parquet")


def _scratch(lake: Path) -> Path:
    # staging and retired folders live outside the datasets, where no reader's glob can see a half-written file
    scratch = Path(lake) / SCRATCH
    scratch.mkdir(parents=True, exist_ok=True)
    return scratch


def write(lake: Path, dataset: Dataset, country: str, date: dt.date, data: pa.Table | pd.DataFrame,
          metadata: dict[str, str] | None = None) -> Path:
    """Replace the partition's content with `data` (and optional Parquet key-value `metadata`); returns its file."""
    table = pa.Table.from_pandas(data, preserve_index=False) if isinstance(data, pd.DataFrame) else data
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               **{k.encode(): v.encode() for k, v in metadata.items()}})
    target = partition_path(lake, dataset, country, date).parent
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = _scratch(lake)
    staging = scratch / f"{uuid.uuid4().hex}.tmp"
    staging.mkdir()
    try:
        pq.write_table(table, staging / PART, compression="zstd")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    retired = None
    if target.exists():
        retired = scratch / f"{uuid.uuid4().hex}.old"
        os.replace(target, retired)
    os.replace(staging, target)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)
    return target / PART


def read(lake: Path, dataset: Dataset, country: str, date: dt.date, columns: list[str] | None = None) -> pa.Table:
    """One partition (only `columns`, if given); a FileNotFoundError naming the file and the partition when it
    was never written."""
    path = partition_path(lake, dataset, country, date)
    if not path.exists():
        raise FileNotFoundError(f"{path}: partition {country}|{date} of {dataset.name} has not been materialized")
    lineage.note(dataset, date)
    return pq.read_table(path, columns=columns)


def floats(table: pa.Table) -> pa.Table:
    """DuckDB's HUGEINT sums arrive as decimals: numbers for models, checks and JSON."""
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.float64()))
    return table


def read_frame(lake: Path, dataset: Dataset, country: str, date: dt.date) -> pd.DataFrame:
    """One partition as pandas, decimals as floats."""
    return floats(read(lake, dataset, country, date)).to_pandas()


def schema_metadata(lake: Path, dataset: Dataset, country: str, date: dt.date) -> dict[str, str]:
    """The Parquet key-value metadata written with a partition (see `write`); {} when there is none."""
    path = partition_path(lake, dataset, country, date)
    if not path.exists():
        raise FileNotFoundError(f"{path}: partition {country}|{date} of {dataset.name} has not been materialized")
    lineage.note(dataset, date)
    raw = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in raw.items() if not k.startswith(b"pandas")}


def row_count(lake: Path, dataset: Dataset, country: str, date: dt.date) -> int | None:
    """Rows of a partition from its Parquet footer, None when the partition does not exist."""
    path = partition_path(lake, dataset, country, date)
    if not path.exists():
        return None
    lineage.note(dataset, date)
    return pq.ParquetFile(path).metadata.num_rows


def dates(lake: Path, dataset: Dataset, country: str) -> list[dt.date]:
    """The dates of a country's partitions, oldest first."""
    _partitioned(dataset)
    folder = Path(lake) / dataset.path / f"country={country}"
    if not folder.exists():
        return []
    return sorted(dt.date.fromisoformat(p.name.removeprefix("date=")) for p in folder.glob("date=*")
                  if (p / PART).exists())


def read_range(lake: Path, dataset: Dataset, country: str, start: dt.date | None = None,
               end: dt.date | None = None, days: list[dt.date] | None = None,
               columns: list[str] | None = None) -> pd.DataFrame:
    """Every partition of a country in [start, end] (or of the given days), as one frame (decimals as floats);
    with no rows, the empty frame of the first partition's schema (no partition: a frame without columns)."""
    wanted = set(days) if days is not None else None
    frames, empty = [], None
    for day in dates(lake, dataset, country):
        if (start and day < start) or (end and day > end) or (wanted is not None and day not in wanted):
            continue
        table = read(lake, dataset, country, day, columns)
        if table.num_rows:
            frames.append(floats(table).to_pandas())
        elif empty is None:
            empty = floats(table).to_pandas()
    if frames:
        return pd.concat(frames, ignore_index=True)
    return empty if empty is not None else pd.DataFrame()


def write_file(lake: Path, dataset: Dataset, data: pa.Table | pd.DataFrame | dict | str) -> Path:
    """Replace a file dataset atomically: a table as Parquet, a dict as JSON, a string as it is."""
    target = file_path(lake, dataset)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _scratch(lake) / f"{uuid.uuid4().hex}{target.suffix}"
    if isinstance(data, (pa.Table, pd.DataFrame)):
        table = pa.Table.from_pandas(data, preserve_index=False) if isinstance(data, pd.DataFrame) else data
        pq.write_table(table, staging, compression="zstd")
    else:
        staging.write_text(data if isinstance(data, str) else json.dumps(data))
    os.replace(staging, target)
    return target


def read_file(lake: Path, dataset: Dataset) -> str:
    """A text file dataset (JSON), or a FileNotFoundError naming it."""
    path = file_path(lake, dataset)
    if not path.exists():
        raise FileNotFoundError(f"{path}: {dataset.name} has not been written")
    lineage.note(dataset)
    return path.read_text()


def read_file_table(lake: Path, dataset: Dataset) -> pa.Table:
    path = file_path(lake, dataset)
    if not path.exists():
        raise FileNotFoundError(f"{path}: {dataset.name} has not been written")
    lineage.note(dataset)
    return pq.read_table(path)


def query(lake: Path, dataset: Dataset, where: str, params: list) -> pd.DataFrame:
    """Rows of every partition matching a DuckDB `where` clause (the partition columns included)."""
    import duckdb

    files = sorted(Path(lake).glob(f"{dataset.path}/*/*/*.parquet"))
    if not files:
        return pd.DataFrame()
    lineage.note(dataset)
    sql = f"select * from read_parquet(?, hive_partitioning = true, union_by_name = true) where {where}"
    with duckdb.connect() as con:
        return con.execute(sql, [[str(f) for f in files], *params]).df()
