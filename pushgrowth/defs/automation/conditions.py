"""How the daily refresh propagates after the landing-zone sensor loads a drop: declarative automation."""

import dagster as dg

FOLLOW = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
"""Materialize when an upstream partition updates, once nothing upstream is running or missing and every
blocking check upstream passed, across runs too: a failed gate holds everything after it."""
