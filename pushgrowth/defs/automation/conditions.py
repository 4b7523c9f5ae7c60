"""How the daily refresh propagates after the landing-zone sensor loads a drop: declarative automation."""

import dagster as dg

from pushgrowth.storage.datasets import DATASETS

EXTERNAL = dg.AssetSelection.assets(*sorted({d.asset for d in DATASETS.values() if d.writer is not None}
                                            | {"oracle"}))
"""Datasets written by another asset (or the simulation driver) than the one their readers depend on: the
decisions log, the published catalog's tables, the oracle. They have no materializations of their own, so they
never count as missing or updated: readers follow the assets that write them."""

FOLLOW = (dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()).ignore(EXTERNAL)
"""Materialize when an upstream partition updates, once nothing upstream is running or missing and every
blocking check upstream passed, across runs too: a failed gate holds everything after it."""
