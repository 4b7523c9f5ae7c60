"""A small valid campaign to break one rule at a time, and helpers to write catalogs into tmp_path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from pushgrowth.campaigns import Problem, validate_catalog

CAMPAIGN_ID = "mla-test-envio-gratis"

BASE: dict[str, Any] = {
    "id": CAMPAIGN_ID,
    "country": "MLA",
    "channel": "push",
    "name": "Envío gratis de prueba",
    "owner": "CRM Argentina",
    "value_proposition": "free_shipping",
    "objective": "conversion",
    "audience": {"segments": ["active", "at_risk"]},
    "coupon": {"kind": "amount", "values": [2000, 3500, 5000], "cost_share": 0.5, "limit_per_user": 1},
    "params": {"min_purchase": 30000},
    "templates": [
        {"id": "urgencia", "tone": "urgency", "title": "{first_name}, tu cupón de {coupon} vence hoy",
         "body": "Usalo en compras desde {min_purchase} con envío gratis."},
        {"id": "beneficio", "tone": "benefit", "title": "Envío gratis + {coupon} de regalo",
         "body": "Elegí {category} y recibilo gratis en tu casa."},
        {"id": "curiosidad", "tone": "curiosity", "title": "¿Ya viste tu cupón?",
         "body": "Te espera en tu cuenta, {first_name}."},
    ],
    "send_window": {"hours": [9, 12, 19, 20], "weekdays": ["tue", "thu", "sat"]},
    "frequency": {"options": [1, 2], "weekly_cap": 2},
    "budget": {"monthly": 5_000_000, "currency": "ARS"},
    "schedule": {"start": "2026-09-01", "end": "2026-12-31", "status": "active"},
    "shares": {"holdout": 0.1, "bau": 0.45, "bandit": 0.45},
    "bau": {"coupon": 3500, "template": "beneficio", "hour": 19, "weekday": "thu", "frequency": 1},
}
"""3 coupons x 3 templates x 4 hours x 3 weekdays x 2 frequencies = 216 joint actions."""


def campaign(**changes: Any) -> dict[str, Any]:
    """A copy of BASE with dotted-path changes: `campaign(**{"coupon.values": [1, 2]})`; None deletes a key."""
    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(leaf)] = value
        elif value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return data


def write_catalog(root: Path, files: dict[str, Any]) -> Path:
    """Write each {name: content} into `root` (a dict or list is dumped as YAML, a str written as is)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        text = content if isinstance(content, str) else yaml.safe_dump(content, allow_unicode=True,
                                                                        sort_keys=False)
        (root / name).write_text(text, encoding="utf-8")
    return root


def country_file(country: str, *campaigns: dict[str, Any]) -> dict[str, Any]:
    return {"country": country, "campaigns": list(campaigns)}


@pytest.fixture
def check(tmp_path: Path):
    """Validate MLA campaigns written to a fresh folder; returns the problems."""
    def run(*campaigns: dict[str, Any], files: dict[str, Any] | None = None) -> list[Problem]:
        root = write_catalog(tmp_path / "catalog", files or {"MLA.yaml": country_file("MLA", *campaigns)})
        return validate_catalog(root)

    return run


def where(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.campaign_id, p.field) for p in problems]
