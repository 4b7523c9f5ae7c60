"""The daemon's run queue, with every partitioned run tagged by its country before it is queued.

The home's `dagster.yaml` limits queued runs to one per country (`tag_concurrency_limits` on `pushgrowth/country`).
The UI tags a multi-partitioned run per dimension, but a run launched with only `dagster/partition` (the GraphQL
client, the Python API, `dagster asset materialize --partition`) carries no `dagster/partition/country`, and a run
of the country-partitioned model job never does; Dagster's partition tags are not ours to add either (a run with
one dimension tag of two reads as a broken partition key). This coordinator is Dagster's `QueuedRunCoordinator`
that adds `pushgrowth/country` (from the partition key) to each partitioned run before it is queued; everything
else, the limits included (`concurrency: runs:`), is Dagster's.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext

PARTITION_TAG = "dagster/partition"
COUNTRY_TAG = "pushgrowth/country"


def country_of(partition: str) -> str | None:
    """The country of a run's partition key: "MLA|2026-09-01" (country-day) or "MLA" (country); None for a key
    of another shape (a run of another code location's partitions)."""
    from pushgrowth.defs.partitions import COUNTRIES, country_day_partitions

    if partition in COUNTRIES:
        return partition
    if country_day_partitions.has_partition_key(partition):
        return country_day_partitions.get_partition_key_from_str(partition).keys_by_dimension["country"]
    return None


class CountryRunCoordinator(QueuedRunCoordinator):
    """`QueuedRunCoordinator` that tags each partitioned run with its country before queuing it."""

    def submit_run(self, context: SubmitRunContext) -> dg.DagsterRun:
        run = context.dagster_run
        partition = run.tags.get(PARTITION_TAG)
        if partition and COUNTRY_TAG not in run.tags:
            country = country_of(partition)
            if country is not None:
                self._instance.add_run_tags(run.run_id, {COUNTRY_TAG: country})
                run = self._instance.get_run_by_id(run.run_id) or run
                context = SubmitRunContext(run, context.workspace)
        return super().submit_run(context)
