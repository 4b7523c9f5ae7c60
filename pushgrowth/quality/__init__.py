"""Great Expectations gates: the suites in `expectations/`, validation of a DataFrame, failures as plain data.

Suites hold what is always true of a dataset (contract nulls, primary keys, accepted values, ranges). What depends
on the partition (its date and country, timestamp windows, the row count against the previous day) is built at
check time by `partition_expectations`. No Dagster here: `pushgrowth.defs.quality.checks` wraps `check_partitions`.

    result = validate(df, "raw_orders")                   # suite expectations/raw_orders.json
    result.success, result.summary(), result.markdown()   # failed expectations: type, column, expected, observed
    check_partitions(home, ["raw_users"], "MLA", date)    # a lake partition, with its partition expectations
"""

from pushgrowth.quality.partitions import (
    LAKE_DATASETS,
    ROW_COUNT_FLOOR,
    check_partition,
    check_partitions,
    partition_expectations,
    partition_file,
    row_count,
    to_frame,
)
from pushgrowth.quality.results import Failure, QualityResult
from pushgrowth.quality.validation import EXPECTATIONS_DIR, load_suite, publish, suite_path, validate

__all__ = [
    "EXPECTATIONS_DIR", "LAKE_DATASETS", "ROW_COUNT_FLOOR", "Failure", "QualityResult", "check_partition",
    "check_partitions", "load_suite", "partition_expectations", "partition_file", "publish", "row_count",
    "suite_path", "to_frame", "validate",
]
