"""The landing zone on disk: `<landing>/<COUNTRY>/<YYYY-MM-DD>/<table>.parquet` plus a `_SUCCESS` marker.

Writers put every table first and the marker last (each file through a temporary name and an atomic rename),
so a drop without a marker is incomplete and is never read. The marker is a JSON manifest with each file's
row count and sha256: a reader can tell a truncated or swapped file from a good one. Readers never modify the
landing zone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pushgrowth.landing.contract import MARKER, TABLES


class ExtractError(ValueError):
    """A raw extract that cannot be loaded; the message names the file and, where it applies, the column."""


@dataclass(frozen=True)
class Drop:
    country: str
    date: dt.date
    path: Path

    @property
    def marker(self) -> Path:
        return self.path / MARKER

    @property
    def complete(self) -> bool:
        return self.marker.exists()

    def manifest(self) -> dict:
        try:
            manifest = json.loads(self.marker.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ExtractError(f"{self.marker}: unreadable completion marker ({exc})") from exc
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ExtractError(f"{self.marker}: completion marker has no 'files' manifest")
        return manifest

    def digest(self) -> str:
        """Fingerprint of the drop as delivered: changes when the drop is delivered again with other content."""
        return hashlib.sha256(self.marker.read_bytes()).hexdigest()[:16]


def drop_path(landing: Path, country: str, date: dt.date) -> Path:
    return Path(landing) / country / date.isoformat()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_drop(landing: Path, country: str, date: dt.date, tables: dict[str, pa.Table]) -> Drop:
    """Deliver one country-day: every contract table (empty ones included), then the marker."""
    missing = sorted(set(TABLES) - set(tables))
    if missing:
        raise ValueError(f"write_drop {country} {date}: missing tables {missing}")
    path = drop_path(landing, country, date)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).unlink(missing_ok=True)
    files = {}
    for name, table in tables.items():
        target = path / TABLES[name].file_name
        tmp = target.with_name(f".{target.name}.tmp")
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, target)
        files[target.name] = {"rows": table.num_rows, "sha256": _sha256(target)}
    manifest = {"country": country, "date": date.isoformat(), "files": files,
                "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    _atomic_write_bytes(path / MARKER, json.dumps(manifest, indent=2, sort_keys=True).encode())
    return Drop(country, date, path)


def list_drops(landing: Path, complete_only: bool = True) -> list[Drop]:
    """Every `<country>/<date>` folder in the landing zone, oldest first; folders with other names are ignored."""
    drops = []
    root = Path(landing)
    if not root.exists():
        return drops
    for country_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for date_dir in sorted(p for p in country_dir.iterdir() if p.is_dir()):
            try:
                date = dt.date.fromisoformat(date_dir.name)
            except ValueError:
                continue
            drop = Drop(country_dir.name, date, date_dir)
            if drop.complete or not complete_only:
                drops.append(drop)
    return drops


def read_table(drop: Drop, name: str) -> pa.Table:
    """One table of a complete drop, checked against the manifest and the contract, cast to the contract types.

    Raises ExtractError naming the file (and the column) for a missing, truncated, unreadable or corrupted file,
    a missing column or a column whose type cannot be cast safely. Extra columns are dropped. Content (nulls
    in key columns, ranges, row counts) is left to the Great Expectations checks on the raw assets, so the
    returned schema marks every column nullable.
    """
    table_def = TABLES[name]
    path = drop.path / table_def.file_name
    if not drop.complete:
        raise ExtractError(f"{drop.path}: drop is incomplete (no {MARKER} marker)")
    entry = drop.manifest()["files"].get(table_def.file_name)
    if entry is None:
        raise ExtractError(f"{drop.marker}: manifest does not list {table_def.file_name}")
    if not path.exists():
        raise ExtractError(f"{path}: file is missing")
    if _sha256(path) != entry.get("sha256"):
        raise ExtractError(f"{path}: content does not match the manifest's sha256 (truncated or replaced file)")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ExtractError(f"{path}: unreadable Parquet file ({exc})") from exc
    if table.num_rows != entry.get("rows"):
        raise ExtractError(f"{path}: {table.num_rows} rows, manifest says {entry.get('rows')} (truncated file)")
    columns = []
    for field in table_def.schema:
        if field.name not in table.column_names:
            raise ExtractError(f"{path}: missing column {field.name!r} ({field.type})")
        column = table.column(field.name)
        if column.type != field.type:
            try:
                column = column.cast(field.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ExtractError(
                    f"{path}: column {field.name!r} has type {column.type}, expected {field.type} ({exc})"
                ) from exc
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=loaded_schema(table_def))


def loaded_schema(table_def) -> pa.Schema:
    """The contract's columns and types with every field nullable: what raw assets store in the lake."""
    return pa.schema([field.with_nullable(True) for field in table_def.schema])
