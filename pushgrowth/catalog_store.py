"""The published catalog: the last valid catalog's flat tables in `<lake>/catalog/`, with its version.

Assignments and dbt read the published catalog, never the YAML files directly, so an invalid edit cannot reach
users: the catalog asset publishes only a catalog without problems, and its blocking check reports the rest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa

from pushgrowth.campaigns import Catalog, catalog_frames
from pushgrowth.lake import write_table

DATASET = "catalog"


def publish(catalog: Catalog, lake: Path) -> dict[str, int]:
    """Write every frame of a valid catalog, then its version last; returns rows per frame."""
    rows = {}
    frames = catalog_frames(catalog)
    frames["country_policies"] = pd.DataFrame(
        [{"country": code, "max_weekly_pushes": p.max_weekly_pushes,
          "quiet_hours": ",".join(map(str, p.quiet_hours.hours))}
         for code, p in sorted(catalog.policies.items())])
    for name, frame in frames.items():
        write_table(lake, DATASET, name, pa.Table.from_pandas(frame, preserve_index=False))
        rows[name] = len(frame)
    (Path(lake) / DATASET / "catalog.json").write_text(catalog.model_dump_json())
    (Path(lake) / DATASET / "VERSION.json").write_text(json.dumps({"version": catalog.version, "rows": rows}))
    return rows


def published_catalog(lake: Path) -> Catalog:
    """The last valid catalog exactly as published (what assignments serve), or a FileNotFoundError."""
    path = Path(lake) / DATASET / "catalog.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no catalog has been published yet; materialize campaign_catalog first")
    return Catalog.model_validate_json(path.read_text())


def published_version(lake: Path) -> str | None:
    path = Path(lake) / DATASET / "VERSION.json"
    return json.loads(path.read_text())["version"] if path.exists() else None
