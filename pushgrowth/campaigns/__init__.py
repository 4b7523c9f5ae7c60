"""The campaign catalog: the single source of truth for what may be sent, validated before activation.

    from pushgrowth.campaigns import load_catalog
    catalog = load_catalog()                  # $PUSHGROWTH_CATALOG, else the repository's campaigns/
    catalog.active(dt.date(2026, 9, 1))       # campaigns that run that day
    catalog.get("mla-envio-gratis-reactivacion").action_space()

`validate_catalog(path)` lists every problem instead of raising; `catalog_frames` and `budget_ledger` (pandas)
are imported on first use so that the CLI and the Dagster code location start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pushgrowth.campaigns.loader import (
    CatalogBuild,
    catalog_files,
    catalog_hash,
    default_catalog_path,
    load_catalog,
    read_catalog,
    validate_catalog,
)
from pushgrowth.campaigns.country_policy import DEFAULT_POLICIES, CountryPolicy, QuietHours
from pushgrowth.campaigns.problems import CatalogError, Problem
from pushgrowth.campaigns.wording import PLACEHOLDERS, RenderedPush, format_coupon, format_money, render
from pushgrowth.campaigns.schema import Campaign, Catalog, Template
from pushgrowth.campaigns.rules import RULES, coupon_cost

if TYPE_CHECKING:
    from pushgrowth.campaigns.budget import UnknownCampaignsError, budget_ledger
    from pushgrowth.campaigns.frames import catalog_frames

_LAZY = {"catalog_frames": "frames", "budget_ledger": "budget", "UnknownCampaignsError": "budget"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"pushgrowth.campaigns.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_POLICIES", "PLACEHOLDERS", "RULES", "Campaign", "Catalog", "CatalogBuild", "CatalogError",
    "CountryPolicy", "Problem", "QuietHours", "RenderedPush", "Template", "UnknownCampaignsError", "budget_ledger",
    "catalog_files", "catalog_frames", "catalog_hash", "coupon_cost", "default_catalog_path", "format_coupon",
    "format_money", "load_catalog", "read_catalog", "render", "validate_catalog",
]
