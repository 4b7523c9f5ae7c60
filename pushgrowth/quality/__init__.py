"""Great Expectations gates: the suites in `expectations/`, validation of a DataFrame, failures as plain data.

Suites hold what is always true of a dataset (contract nulls, primary keys, accepted values, ranges). What depends
on the partition (its date and country, timestamp windows, the row count against the previous day) is built at
check time by `partition_expectations`. No Dagster and no lake here: `pushgrowth.defs.quality.checks` reads the
partitions and wraps `check_frame`.

    result = validate(df, "raw_orders")                   # suite expectations/raw_orders.json
    result.success, result.summary(), result.markdown()   # failed expectations: type, column, expected, observed
    check_frame(df, "raw_users", "MLA", date, previous_rows=n)  # with the partition's own expectations
"""

from pushgrowth.quality.partition_expectations import (
    ROW_COUNT_FLOOR,
    SUITES,
    check_frame,
    missing_partition,
    partition_expectations,
    to_frame,
)
from pushgrowth.quality.results import Failure, QualityResult
from pushgrowth.quality.validation import EXPECTATIONS_DIR, load_suite, publish, suite_path, validate

__all__ = [
    "EXPECTATIONS_DIR", "ROW_COUNT_FLOOR", "SUITES", "Failure", "QualityResult", "check_frame", "load_suite",
    "missing_partition", "partition_expectations", "publish", "suite_path", "to_frame", "validate",
]
