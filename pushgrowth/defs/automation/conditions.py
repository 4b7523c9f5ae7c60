"""How the daily refresh propagates after the landing-zone sensor loads a drop: declarative automation.

Dagster's `eager()` follows only the latest date partition (the machine's today, a day ahead here), so a day's
drop, which lands once that local day is over, or a backfill of an earlier day would never be followed. These
conditions follow the partition the data updated, whatever today's date is, and never fan out:

- a country-day asset is started by an update of a country-day partition upstream (the same one); the coarser
  assets it reads (the catalog, the country's model) must be there and settled, but their update alone does not
  re-run every day of the past (a new champion serves the next day's plans; plans already delivered stand);
- a country's model follows any day of its country (`BY_COUNTRY`) and does not wait for days without data;
- nothing starts while an asset it reads is running, or while a blocking check upstream has failed; a day's
  assignments wait for the gate that follows the day's features.
"""

import dagster as dg

from pushgrowth.storage.datasets import DATASETS, DECISIONS

AC = dg.AutomationCondition

EXTERNAL = dg.AssetSelection.assets(*sorted({d.asset for d in DATASETS.values() if d.writer is not None}
                                            | {"oracle"}))
"""Datasets written by another step than the asset their readers depend on: the decisions log, the published
catalog's tables, the oracle. They have no runs of their own, so they never start or hold back their readers;
only the day's decisions read-back (stg_decisions) follows `decisions` (see `defs/external.py`)."""

COARSE = dg.AssetSelection.assets("campaign_catalog", "bandit_model", "model_promotion")
"""Assets not partitioned by country and day: a country-day asset needs them but does not re-run for them."""

SETTLED = ~AC.any_deps_in_progress() & ~AC.in_progress() & AC.all_deps_blocking_checks_passed()


def _follow(ignored: dg.AssetSelection) -> dg.AutomationCondition:
    started = AC.any_deps_updated().ignore(ignored | COARSE).since_last_handled()
    return (started & ~AC.any_deps_missing().ignore(ignored) & SETTLED.ignore(ignored)).with_label("follow")


FOLLOW = _follow(EXTERNAL)
"""A country-day asset: its partition updated upstream, nothing it reads missing, running or failed a gate."""

FOLLOW_DECISIONS = _follow(EXTERNAL - dg.AssetSelection.assets(DECISIONS.asset))
"""The decisions read-back: it follows the partition of `decisions` that daily_assignments (or, for a day
nobody planned, the raw load) reported."""

MODEL_FRESH = (AC.any_deps_match(AC.newly_updated()).allow(dg.AssetSelection.assets("model_promotion"))
               .since(AC.any_deps_match(AC.newly_updated() | AC.will_be_requested())
                      .allow(dg.AssetSelection.assets("user_features"))))
"""The country's gate has run since the day's features changed or were requested (they retrain the model; the
gate follows it): a gate that ran before the day's features, e.g. after the catalog was published, is not
enough."""

AFTER_MODELS = (FOLLOW & MODEL_FRESH).with_label("follow, after the day's model")
"""Assignments: as FOLLOW, once the day's training and gate have run (not before them with yesterday's champion
and again after them). A day whose training fails gets its plans from the `daily_safety_net` schedule."""

FOLLOW_ANY_DAY = ((AC.any_deps_updated().ignore(EXTERNAL).since_last_handled() & SETTLED.ignore(EXTERNAL))
                  .with_label("follow any day"))
"""A country's model: any day of its country updated; a date without data (before go-live, after the last drop)
is not missing data."""

CHECK = (AC.any_deps_updated().ignore(EXTERNAL | COARSE).since_last_handled() & ~AC.in_progress()
         & ~AC.any_deps_missing().ignore(EXTERNAL) & ~AC.any_deps_in_progress().ignore(EXTERNAL)
         ).with_label("check after its asset")
"""A check: with its asset when automation requests it, or right after another run updated it without checks;
never before its asset (or an additional input) exists."""
