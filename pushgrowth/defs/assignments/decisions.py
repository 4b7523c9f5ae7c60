"""The decisions dataset as an external asset: what dbt reads back the day after daily_assignments wrote it."""

import dagster as dg


def decisions_spec() -> dg.AssetSpec:
    """The decisions dataset as dbt reads it back the next day (its `pushgrowth.decisions` source).

    Yesterday's decisions feed today's audiences, which feed today's decisions: a loop in time that the asset
    graph must not contain, so the read-back is its own (external) asset, written by daily_assignments.
    """
    return dg.AssetSpec("decisions", group_name="assignments", kinds={"parquet"},
                        description="lake/decisions: every decision written by daily_assignments, read by dbt "
                                    "(stg_decisions) from the next day's build on.",
                        metadata={"written_by": "daily_assignments"})


@dg.definitions
def external() -> dg.Definitions:
    """In its own module: the defs loader takes a module's @definitions function instead of its other objects."""
    return dg.Definitions(assets=[decisions_spec()])
