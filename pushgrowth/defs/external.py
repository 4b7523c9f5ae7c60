"""External assets: lake datasets written by another step than the asset their readers depend on.

- `decisions`: the decisions log as dbt, the budget ledger and the next days' assignments read it back.
  Partitioned by the days planned: daily_assignments of day D reports the partition of D + 1 it writes, and a
  raw load reports a day nobody planned as having no decisions; each starts the day's read-back in dbt.
  Yesterday's decisions feed today's audiences, which feed today's decisions: a loop in time that the asset
  graph must not contain, so the read-back is its own (external) asset, written by daily_assignments.
- `oracle` (simulation only): the World's value of every decision, written by the simulation driver (which
  reports each partition it writes as a runless materialization), read by the evaluation report.
"""

import dagster as dg

from pushgrowth.defs.partitions import country_day_partitions
from pushgrowth.storage import DECISIONS, ORACLE


def external_specs() -> list[dg.AssetSpec]:
    """Built by a function: the defs loader would pick module-level specs up twice."""
    return [
        dg.AssetSpec(DECISIONS.asset, group_name="assignments", kinds={"parquet"}, description=DECISIONS.description,
                     partitions_def=country_day_partitions,
                     metadata={"written_by": DECISIONS.written_by}),
        dg.AssetSpec(ORACLE.asset, group_name="simulation", kinds={"parquet"}, description=ORACLE.description,
                     metadata={"written_by": "the simulation driver (pushgrowth simulate)"}),
    ]


@dg.definitions
def external() -> dg.Definitions:
    """In its own module: the defs loader takes a module's @definitions function instead of its other objects."""
    return dg.Definitions(assets=external_specs())
