"""The asset graph as a reviewed snapshot: a change of any asset's deps, group, partitions, kinds or checks
fails here until the snapshot is updated on purpose (`PUSHGROWTH_UPDATE_SNAPSHOTS=1 pytest tests/defs/
test_asset_graph.py`), so lineage never changes by accident."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "asset_graph.json"


def _partitions(partitions_def) -> str | None:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return "multi(" + ",".join(sorted(d.name for d in partitions_def.partitions_defs)) + ")"
    return type(partitions_def).__name__


def graph_snapshot(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    checks: dict[str, list[str]] = {}
    for key in graph.asset_check_keys:
        checks.setdefault(key.asset_key.to_user_string(), []).append(key.name)
    out = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        out[key.to_user_string()] = {
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "group": node.group_name,
            "materializable": node.is_materializable,
            "partitions": _partitions(node.partitions_def),
            "kinds": sorted(node.kinds),
            "checks": sorted(checks.get(key.to_user_string(), [])),
            "automated": node.automation_condition is not None,
        }
    return out


def test_the_asset_graph_matches_its_snapshot():
    from pushgrowth.definitions import defs

    current = graph_snapshot(defs)
    if os.environ.get("PUSHGROWTH_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    changed = sorted(k for k in current.keys() | expected.keys() if current.get(k) != expected.get(k))
    assert not changed, "asset graph changed for: " + ", ".join(
        f"{k} (now {current.get(k)}, snapshot {expected.get(k)})" for k in changed[:5])


def test_the_snapshot_notices_a_new_dependency():
    """The snapshot is sensitive to one added edge (the test above can fail)."""
    from pushgrowth.definitions import defs

    before = graph_snapshot(defs)

    @dg.asset(deps=["raw_users"])
    def extra() -> None: ...

    after = graph_snapshot(dg.Definitions.merge(defs, dg.Definitions(assets=[extra])))
    assert after != before and after["extra"]["deps"] == ["raw_users"]
