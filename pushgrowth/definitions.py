"""The code location: everything under `defs/` (loaded by workspace.yaml and `dagster dev`).

Runs execute their steps in the run's own process (`in_process_executor`): a country-day's runs are small and
follow one another, and Dagster's default multiprocess executor starts a fresh interpreter for every step, which
imports this code location again (4-5 s and ~400 MB each) for steps that often take less than that.
"""

from pathlib import Path

import dagster as dg

defs = dg.Definitions.merge(dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
                            dg.Definitions(executor=dg.in_process_executor))
