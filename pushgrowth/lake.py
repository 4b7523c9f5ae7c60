"""Partitioned Parquet storage under `<home>/lake`: `<dataset>/country=<C>/date=<YYYY-MM-DD>/part-0.parquet`.

Writing a partition replaces exactly that partition (write to a temporary folder, then swap), so a re-run
leaves the same files as the first run and other partitions untouched. Hive-style folder names let DuckDB and
dbt read a whole dataset with `read_parquet('<dataset>/*/*/*.parquet', hive_partitioning = true)`.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


SCRATCH = ".scratch"


def partition_dir(lake: Path, dataset: str, country: str, date: dt.date) -> Path:
    return Path(lake) / dataset / f"country={country}" / f"date={date.isoformat()}"


def write_partition(lake: Path, dataset: str, country: str, date: dt.date, table: pa.Table) -> Path:
    """Replace the partition's content with `table`; returns the partition's Parquet file."""
    target = partition_dir(lake, dataset, country, date)
    target.parent.mkdir(parents=True, exist_ok=True)
    # staging and retired folders live outside the dataset, where no reader's glob can see a half-written file
    scratch = Path(lake) / SCRATCH
    scratch.mkdir(parents=True, exist_ok=True)
    staging = scratch / f"{uuid.uuid4().hex}.tmp"
    staging.mkdir()
    try:
        pq.write_table(table, staging / "part-0.parquet", compression="zstd")
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
    return target / "part-0.parquet"


def read_partition(lake: Path, dataset: str, country: str, date: dt.date) -> pa.Table:
    path = partition_dir(lake, dataset, country, date) / "part-0.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: partition {country}|{date} of {dataset} has not been materialized")
    return pq.read_table(path)


def dataset_glob(lake: Path, dataset: str) -> str:
    return str(Path(lake) / dataset / "*" / "*" / "*.parquet")


def write_table(lake: Path, dataset: str, name: str, table: pa.Table) -> Path:
    """Replace an unpartitioned table `<lake>/<dataset>/<name>.parquet` atomically."""
    target = Path(lake) / dataset / f"{name}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(lake) / SCRATCH
    scratch.mkdir(parents=True, exist_ok=True)
    staging = scratch / f"{uuid.uuid4().hex}.parquet"
    pq.write_table(table, staging, compression="zstd")
    os.replace(staging, target)
    return target


def read_table(lake: Path, dataset: str, name: str) -> pa.Table:
    path = Path(lake) / dataset / f"{name}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: {dataset}/{name} has not been materialized")
    return pq.read_table(path)
