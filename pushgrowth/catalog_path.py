"""Where the campaign catalog lives, and which countries it names, without validating it.

Partitions are built when the code location loads; an invalid catalog must not stop the location from loading
(the catalog's blocking checks report it instead), so this reader only looks for `country:` values.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

ENV_VAR = "PUSHGROWTH_CATALOG"


class CatalogLoader(yaml.SafeLoader):
    """Safe YAML in which dates stay strings: the catalog's schema parses them, so an impossible date such as
    `2026-02-30` is a problem naming its file, campaign, field and line, not a crash of the YAML reader (which
    would also take the code location down)."""


CatalogLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
FALLBACK_COUNTRIES = ("MLA", "MLB", "MLM")


def default_catalog_path() -> Path:
    """`$PUSHGROWTH_CATALOG`, else the repository's top-level `campaigns/` folder."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser().resolve() if env else Path(__file__).resolve().parents[1] / "campaigns"


def catalog_countries(path: Path | None = None) -> tuple[str, ...]:
    """Sorted country codes mentioned by the catalog's campaigns; the three launch countries if none are found."""
    root = path or default_catalog_path()
    files = sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml")) if root.is_dir() else [root]
    found: set[str] = set()
    for file in files:
        try:
            doc = yaml.load(file.read_text(), Loader=CatalogLoader)  # noqa: S506 - a SafeLoader
        except (OSError, ValueError, yaml.YAMLError):  # an unreadable file is the catalog check's to report
            continue
        items = doc.get("campaigns", []) if isinstance(doc, dict) else doc if isinstance(doc, list) else []
        if isinstance(doc, dict) and isinstance(doc.get("country"), str):
            found.add(doc["country"])
        found.update(c["country"] for c in items if isinstance(c, dict) and isinstance(c.get("country"), str))
    return tuple(sorted(found)) or FALLBACK_COUNTRIES
