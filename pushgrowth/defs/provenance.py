"""Each materialization says what it read: `pushgrowth/reads`, the assets behind every lake dataset (and model
alias) the step read, as noted by the storage layer. The lineage test holds these to the declared deps."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import TypeVar

import dagster as dg

from pushgrowth.storage import lineage

READS = "pushgrowth/reads"
F = TypeVar("F", bound=Callable[..., dg.MaterializeResult])


def _partition_date(context: dg.AssetExecutionContext) -> dt.date | None:
    if not context.has_partition_key:
        return None
    key = context.partition_key
    keys = getattr(key, "keys_by_dimension", None)
    if keys and "date" in keys:
        return dt.date.fromisoformat(keys["date"])
    return None


def traced(function: F) -> F:
    """Record the reads of an asset function that takes the context first and returns a MaterializeResult."""
    @functools.wraps(function)
    def inner(context: dg.AssetExecutionContext, *args, **kwargs):
        with lineage.recording(_partition_date(context)) as reads:
            result = function(context, *args, **kwargs)
        own = context.assets_def.key.to_user_string() if context.has_assets_def else None
        read = sorted(reads.assets - {own})
        return dg.MaterializeResult(asset_key=result.asset_key, metadata={**(result.metadata or {}),
                                                                          READS: dg.MetadataValue.json(read)},
                                    check_results=result.check_results, data_version=result.data_version,
                                    tags=result.tags)
    return inner  # type: ignore[return-value]
