"""The storage registry is the one place a lake path is spelled, and it agrees with dbt and the asset graph."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from pushgrowth.storage import datasets as registry  # the registry of datasets
from pushgrowth.storage.datasets import DATASETS

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "pushgrowth"
STORAGE = PACKAGE / "storage"

PATH_SHAPES = re.compile(r"(^|/)(raw|marts|catalog)/|country=|date=|part-0\.parquet")
"""What a lake path looks like: a dataset folder under raw/, marts/ or catalog/, a hive partition folder, a
partition's file name."""
TOP_FOLDERS = {d.path.split("/")[0] for d in DATASETS.values()}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            ids.add(id(node.value))  # attribute docstrings
    return ids


def path_literals(source: str) -> list[tuple[int, str]]:
    """String literals of `source` that spell a lake path: a path-shaped string (not a docstring or a
    description), or a dataset's folder joined to the lake with `/`."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    descriptions = {id(kw.value) for node in ast.walk(tree) if isinstance(node, ast.Call) for kw in node.keywords
                    if kw.arg in ("description", "help")}
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and "lake" in ast.unparse(node.left)
                and isinstance(node.right, ast.Constant) and node.right.value in TOP_FOLDERS):
            found.append((node.lineno, node.right.value))
        if isinstance(node, ast.JoinedStr):
            head = node.values[0] if node.values else None
            if isinstance(head, ast.Constant) and isinstance(head.value, str) and PATH_SHAPES.search(head.value):
                found.append((node.lineno, head.value))
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                and id(node) not in descriptions and " " not in node.value and PATH_SHAPES.search(node.value)):
            found.append((node.lineno, node.value))
    return found


def test_no_module_outside_storage_spells_a_lake_path():
    offenders = []
    for file in sorted(PACKAGE.rglob("*.py")):
        if STORAGE in file.parents:
            continue
        offenders += [f"{file.relative_to(REPO)}:{line}: {text!r}" for line, text in path_literals(file.read_text())]
    assert not offenders, "lake paths spelled outside pushgrowth/storage:\n" + "\n".join(offenders)


@pytest.mark.parametrize("source", [
    'p = partition_dir(lake, "raw/users", c, d)',
    'p = lake / "decisions" / f"country={c}"',
    'p = Path(lake) / "pacing"',
    'p = folder / "part-0.parquet"',
    'name = f"marts/{model}"',
    'p = lake / "catalog" / "campaigns.parquet"',
])
def test_the_path_check_catches_the_ways_a_path_was_spelled(source):
    assert path_literals(source), source


@pytest.mark.parametrize("source", [
    '"""Reads lake/raw/users/country=X/date=Y/part-0.parquet."""',
    'metadata = {"decisions": 3, "oracle": None}',
    'x = dg.AssetSpec("decisions", description="lake/decisions: every decision")',
])
def test_the_path_check_leaves_docstrings_descriptions_and_keys_alone(source):
    assert not path_literals(source), source


def test_every_dataset_has_its_own_path_and_a_known_partitioning():
    paths = [d.path for d in DATASETS.values()]
    assert len(paths) == len(set(paths))
    assert all(d.partitioning in ("country_date", "file") for d in DATASETS.values())
    assert all(name == d.name for name, d in DATASETS.items())
    with pytest.raises(KeyError, match="no dataset 'nope' in the storage registry; known: audiences"):
        registry.dataset("nope")


def test_dbt_sources_read_the_registrys_paths():
    """dbt spells its sources' locations in YAML: they must be the registry's (raw/, the pushgrowth datasets,
    the catalog tables), and every source table must be a dataset of the registry."""
    sources = yaml.safe_load((REPO / "dbt_project/models/staging/__sources.yml").read_text())["sources"]
    for source in sources:
        assert source["meta"]["external_location"] == registry.dbt_location(source["name"]), source["name"]
        for table in source["tables"]:
            name = {"raw": f"raw_{table['name']}", "pushgrowth": table["name"],
                    "catalog": f"catalog_{table['name']}"}[source["name"]]
            assert name in DATASETS, name
            location = registry.dbt_location(source["name"]).replace("{name}", table["name"])
            assert DATASETS[name].path in location, (name, location)


def test_every_dataset_belongs_to_an_asset_of_the_definitions():
    import dagster as dg

    from pushgrowth.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    for d in DATASETS.values():
        assert d.asset in keys, d.name
        assert d.written_by in keys | {"simulation"}, d.name
    assert dg.AssetKey("oracle") in defs.resolve_asset_graph().get_all_asset_keys()
