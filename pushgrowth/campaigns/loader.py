"""Reading the catalog folder: every file, every campaign, every problem at once, and the catalog version.

A broken campaign must not hide the others' problems: each campaign is validated on its own, pydantic's shape
errors become problems like any other, and the rules of `validation.py` and `overlap.py` run on every campaign
whose shape is valid. Only then does `load_catalog` decide: a `Catalog`, or a `CatalogError` listing them all.
"""

from __future__ import annotations

import datetime as dt

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pushgrowth.campaigns.overlap import check_catalog
from pushgrowth.campaigns.country_policy import DEFAULT_POLICIES, CountryPolicy, PolicyFile, merge_policy, policy_path
from pushgrowth.campaigns.problems import (
    NO_CAMPAIGN,
    CatalogError,
    Entry,
    FieldPath,
    Problem,
    format_field,
    pydantic_findings,
)
from pushgrowth.campaigns.schema import CATALOG_FILE_KEYS, Campaign, Catalog
from pushgrowth.campaigns.rules import check_campaign
from pushgrowth.catalog_path import ENV_VAR, CatalogLoader, default_catalog_path
from pushgrowth.domain import COUNTRIES

__all__ = ["ENV_VAR", "CatalogBuild", "catalog_files", "catalog_hash", "default_catalog_path", "load_catalog",
           "read_catalog", "validate_catalog"]

MERGE_TAG = "tag:yaml.org,2002:merge"


def _display(path: Path) -> str:
    """A path as a reviewer would type it: relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def catalog_files(path: Path | None = None) -> tuple[Path, list[Path], Path | None]:
    """(root, campaign files, policy file) of a catalog folder or single file.

    Campaign files are the folder's `*.yaml` / `*.yml`, sorted; names starting with `_` or `.` are not campaign
    files (`_policy.yaml` is the policy override).
    """
    root = Path(path) if path is not None else default_catalog_path()
    if root.is_dir():
        files = sorted(p for p in [*root.glob("*.yaml"), *root.glob("*.yml")] if not p.name.startswith(("_", ".")))
    else:
        files = [root] if root.is_file() else []
    return root, files, policy_path(root) if root.exists() else None


def catalog_hash(path: Path | None = None) -> str:
    """sha256 over the sorted (file name, contents) of the campaign and policy files: the catalog version.

    Names are taken relative to the catalog folder, so the same catalog checked out anywhere has one version.
    """
    _, files, policy = catalog_files(path)
    digest = hashlib.sha256()
    for file in sorted([*files, *([policy] if policy else [])], key=lambda p: p.name):
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass
class CatalogBuild:
    """Everything read from a catalog path: the campaigns (valid or not), the policies and all problems."""

    root: Path
    entries: list[Entry] = field(default_factory=list)
    policies: dict[str, CountryPolicy] = field(default_factory=lambda: dict(DEFAULT_POLICIES))
    problems: list[Problem] = field(default_factory=list)
    version: str = ""

    @property
    def campaigns(self) -> list[Campaign]:
        """Campaigns whose shape is valid (their rules may still have failed)."""
        return [e.campaign for e in self.entries if e.campaign is not None]

    def catalog(self) -> Catalog:
        """The catalog, or a CatalogError listing every problem."""
        if self.problems:
            raise CatalogError(self.problems, _display(self.root))
        return Catalog(campaigns=tuple(self.campaigns), policies=self.policies, version=self.version,
                       root=self.root, files={e.campaign.id: e.file for e in self.entries if e.campaign})


def _duplicate_keys(node: yaml.Node | None, path: FieldPath = ()) -> list[tuple[FieldPath, int]]:
    """Keys written twice in one mapping: YAML would silently keep the last, hiding the first from review."""
    found: list[tuple[FieldPath, int]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == MERGE_TAG:
                continue
            if key.value in seen:
                found.append(((*path, key.value), key.start_mark.line + 1))
            seen.add(key.value)
            found.extend(_duplicate_keys(value, (*path, key.value)))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found.extend(_duplicate_keys(item, (*path, i)))
    return found


def _parse(text: str) -> tuple[Any, yaml.Node | None, list[tuple[FieldPath, int]]]:
    """The document, its node tree (for line numbers) and its duplicate keys; raises yaml.YAMLError."""
    loader = CatalogLoader(text)
    try:
        node = loader.get_single_node()
        duplicates = _duplicate_keys(node)
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, node, duplicates


def _yaml_problem(file: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    parts = [str(getattr(exc, "context", None) or ""), str(getattr(exc, "problem", None) or exc)]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return Problem(file, NO_CAMPAIGN, "-", f"YAML syntax error{where}: {'; '.join(p for p in parts if p)}",
                   mark.line + 1 if mark else None)


def _child(node: yaml.Node | None, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        matches = (v for k, v in reversed(node.value) if isinstance(k, yaml.ScalarNode) and k.value == part)
        return next(matches, None)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]
    return None


def _line_of(node: yaml.Node | None, key: str) -> int | None:
    child = _child(node, key)
    return child.start_mark.line + 1 if child is not None else None


def _read_policies(build: CatalogBuild, policy: Path | None) -> None:
    if policy is None:
        return
    name = _display(policy)
    try:
        data, _, _ = _parse(policy.read_text(encoding="utf-8"))
        overrides = PolicyFile.model_validate(data or {})
    except yaml.YAMLError as exc:
        build.problems.append(_yaml_problem(name, exc))
        return
    except ValidationError as exc:
        build.problems.extend(Problem(name, NO_CAMPAIGN, format_field(loc), msg)
                              for loc, msg in pydantic_findings(exc, PolicyFile))
        return
    for code in sorted(set(overrides.countries) - set(COUNTRIES)):
        build.problems.append(Problem(name, NO_CAMPAIGN, f"countries.{code}",
                                      f"unknown country; expected one of: {', '.join(COUNTRIES)}"))
    seen: set[tuple[str, str]] = set()
    for code in DEFAULT_POLICIES:
        try:
            build.policies[code] = merge_policy(code, overrides)
        except ValidationError as exc:
            own = overrides.countries.get(code, {})
            for loc, msg in pydantic_findings(exc, CountryPolicy):
                where = format_field((("countries", code) if loc[0] in own else ("defaults",)) + loc)
                if (where, msg) not in seen:
                    seen.add((where, msg))
                    build.problems.append(Problem(name, NO_CAMPAIGN, where, msg))


def _campaign_list(build: CatalogBuild, name: str, data: Any, node: yaml.Node | None
                   ) -> tuple[list[Any], yaml.Node | None, FieldPath, str | None] | None:
    """(campaigns, their YAML node, their path in the file, the file's country), or None after a problem.

    A file is a mapping with `campaigns:` (and optionally `country:`, `description:`) or a bare list.
    """
    if isinstance(data, list):
        return data, node, (), None
    if isinstance(data, dict):
        for key in data:
            if key not in CATALOG_FILE_KEYS:
                build.problems.append(Problem(name, NO_CAMPAIGN, str(key), "unknown top-level key; a catalog file "
                                              f"has {', '.join(CATALOG_FILE_KEYS)}", _line_of(node, key)))
        country = data.get("country")
        if country is not None and country not in COUNTRIES:
            build.problems.append(Problem(name, NO_CAMPAIGN, "country", f"unknown country {country!r}; expected "
                                          f"one of: {', '.join(COUNTRIES)}", _line_of(node, "country")))
            country = None
        if isinstance(data.get("campaigns"), list):
            return data["campaigns"], _child(node, "campaigns"), ("campaigns",), country
    build.problems.append(Problem(name, NO_CAMPAIGN, "campaigns", (
        "expected a list of campaigns under `campaigns:` (the file is empty or has another shape)")))
    return None


def _in_campaign(where: FieldPath, prefix: FieldPath) -> tuple[int | None, FieldPath]:
    """(index of the campaign, path inside it) for a path of the file; (None, path) outside any campaign."""
    n = len(prefix)
    if where[:n] == prefix and len(where) > n + 1 and isinstance(where[n], int):
        return where[n], where[n + 1:]
    return None, where


def _read_file(build: CatalogBuild, path: Path) -> None:
    name = _display(path)
    try:
        data, node, duplicates = _parse(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        build.problems.append(_yaml_problem(name, exc))
        return
    except (OSError, UnicodeDecodeError) as exc:
        build.problems.append(Problem(name, NO_CAMPAIGN, "-", f"cannot read the file: {exc}"))
        return
    found = _campaign_list(build, name, data, node)
    if found is None:
        return
    items, items_node, prefix, country = found
    entries = [Entry(name, i, raw, _child(items_node, i), country) for i, raw in enumerate(items)]
    for where, line in duplicates:
        index, inside = _in_campaign(where, prefix)
        ref = entries[index].ref if index is not None and index < len(entries) else NO_CAMPAIGN
        build.problems.append(Problem(name, ref, format_field(inside if ref != NO_CAMPAIGN else where),
                                      "duplicate key; YAML keeps only the last one, hiding the first from review",
                                      line))
    for entry in entries:
        if not isinstance(entry.raw, dict):
            got = type(entry.raw).__name__
            entry.problems.append(entry.problem((), f"expected a campaign (a mapping), got {got}"))
            continue
        try:
            entry.campaign = Campaign.model_validate(entry.raw)
        except ValidationError as exc:
            entry.problems.extend(entry.problem(loc, msg) for loc, msg in pydantic_findings(exc, Campaign))
    build.entries.extend(entries)


def read_catalog(path: Path | str | None = None) -> CatalogBuild:
    """Read and check a catalog folder (or file) without raising for its content: see `CatalogBuild`."""
    root, files, policy = catalog_files(Path(path) if path is not None else None)
    build = CatalogBuild(root=root)
    if not root.exists():
        build.problems.append(Problem(_display(root), NO_CAMPAIGN, "-", "the catalog path does not exist"))
        return build
    build.version = catalog_hash(root)
    _read_policies(build, policy)
    if not files:
        build.problems.append(Problem(_display(root), NO_CAMPAIGN, "-", "no campaign files (*.yaml) found"))
    for file in files:
        _read_file(build, file)
    for entry in build.entries:
        if entry.campaign is not None:
            findings = check_campaign(entry.campaign, build.policies[entry.campaign.country])
            entry.problems.extend(entry.problem(where, message) for where, message in findings)
    build.problems.extend(p for e in build.entries for p in e.problems)
    build.problems.extend(check_catalog(build.entries, build.policies))
    order = {_display(f): i for i, f in enumerate(files)}
    build.problems.sort(key=lambda p: (order.get(p.file, -1), p.line or 0))
    return build


def refuse_running_changes(build: CatalogBuild, published: Catalog | None, today: dt.date) -> list[Problem]:
    """Changes a campaign already running may not take, against the published catalog: a new group salt would
    move its users between holdout, BAU and bandit mid-experiment. The problems are added to `build` (so it
    cannot be published) and returned."""
    if published is None:
        return []
    found = []
    before = {c.id: c for c in published.campaigns}
    for entry in build.entries:
        c, old = entry.campaign, before.get(entry.campaign.id) if entry.campaign is not None else None
        if old is None or old.schedule.status == "draft" or old.schedule.start > today:
            continue
        if c.shares.salt != old.shares.salt:
            found.append(entry.problem(("shares", "salt"), f"campaign running since {old.schedule.start} was split "
                                       f"with salt {old.shares.salt!r}; a new salt reshuffles its groups "
                                       "mid-experiment: keep the salt, or start a new campaign id"))
    build.problems.extend(found)
    return found


def validate_catalog(path: Path | str | None = None) -> list[Problem]:
    """Every problem of the catalog at `path` (default: `$PUSHGROWTH_CATALOG`, else `campaigns/`); [] if valid."""
    return read_catalog(path).problems


def load_catalog(path: Path | str | None = None) -> Catalog:
    """The validated catalog at `path` (default: `$PUSHGROWTH_CATALOG`, else the repository's `campaigns/`).

    Raises CatalogError, whose message lists every problem as `file: campaign_id: field: message`.
    """
    return read_catalog(path).catalog()
