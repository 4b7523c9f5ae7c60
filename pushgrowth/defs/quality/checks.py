"""Blocking Great Expectations gates on the raw extracts and on user_features, one country-day at a time.

Each check reads its partition back from the lake and runs the dataset's suite (`expectations/<asset>.json`)
plus the partition's own expectations (see `pushgrowth.quality`). A failed check stops every downstream asset of
the same run; its description and metadata name the dataset, list the failed expectations and link the Data
Docs page. The seven raw checks run as one step (one GX start-up per country-day instead of seven), so a failed
raw table holds back everything downstream of any raw table in that run; dbt reads all seven together anyway.
"""

import datetime as dt
import warnings
from collections.abc import Iterable

import dagster as dg

from pushgrowth import quality
from pushgrowth.defs.automation.conditions import CHECK
from pushgrowth.defs.partitions import country_and_date, country_day_partitions
from pushgrowth.defs.resources import HomeResource
from pushgrowth.home import Home
from pushgrowth.landing.contract import TABLES
from pushgrowth.storage import RAW, by_asset
from pushgrowth.storage import lake as store
from pushgrowth.timing import stage

CHECK_NAME = "great_expectations"
AUTOMATION = CHECK
"""Run with the asset when automation requests it, or right after it when another run updated it without checks."""
# partitioned asset checks are a preview feature in Dagster 1.13; they are what makes a check per partition
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")


def check_description(asset: str) -> str:
    return (f"Great Expectations suite `expectations/{asset}.json` plus the partition's own expectations (date, "
            "country, timestamp window, row count against the previous day); blocks everything downstream.")


def raw_check_specs() -> list[dg.AssetCheckSpec]:
    """Built by a function, like the raw specs: the defs loader would pick module-level specs up twice."""
    return [
        dg.AssetCheckSpec(CHECK_NAME, asset=f"raw_{name}", blocking=True, partitions_def=country_day_partitions,
                          description=check_description(f"raw_{name}"), automation_condition=AUTOMATION,
                          metadata={"suite": dg.MetadataValue.path(str(quality.suite_path(f"raw_{name}")))})
        for name in TABLES
    ]


def check_partitions(home: Home, datasets: Iterable[str], country: str, date: dt.date, data_docs: bool = True,
                     docs_index: bool = False) -> list[quality.QualityResult]:
    """Validate one (country, date) partition of each dataset (named as its asset) from the lake; Data Docs go
    to `<home>/reports/data_docs` (GX project in `<home>/gx`), their index page only with `docs_index` or a
    failure (the day's assignment checks rebuild it, see `quality.publish`). A partition missing from the lake
    is a failed result, not an exception."""
    results = []
    for name in datasets:
        dataset = by_asset(name)
        if not store.exists(home.lake, dataset, country, date):
            results.append(quality.missing_partition(name, country, date,
                                                     store.partition_path(home.lake, dataset, country, date)))
            continue
        previous = store.row_count(home.lake, dataset, country, date - dt.timedelta(days=1))
        users = store.row_count(home.lake, RAW["users"], country, date) if name == "user_features" else None
        frame = quality.to_frame(store.read(home.lake, dataset, country, date))
        results.append(quality.check_frame(frame, name, country, date, previous_rows=previous, users_rows=users))
    if not data_docs:
        return results
    return quality.publish(results, home.reports / "data_docs", home.root / "gx", index=docs_index)


def check_result(result: quality.QualityResult, context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    country, date = country_and_date(context)
    metadata: dict[str, dg.RawMetadataValue] = {
        "dataset": result.dataset,
        "partition": f"{country}|{date.isoformat()}",
        "dagster/row_count": result.rows,
        "evaluated_expectations": result.evaluated,
        "failed_expectations": len(result.failures),
        "failures": dg.MetadataValue.md(result.markdown() or "All expectations passed."),
    }
    if result.data_docs is not None:
        metadata["data_docs"] = dg.MetadataValue.path(str(result.data_docs))
    if result.docs_error:
        context.log.warning(f"{result.dataset}: Data Docs were not built ({result.docs_error})")
        metadata["data_docs_error"] = result.docs_error
    if not result.success:
        context.log.error(result.summary())
    return dg.AssetCheckResult(asset_key=dg.AssetKey(result.dataset), check_name=CHECK_NAME,
                               passed=result.success, description=result.summary(), metadata=metadata)


@dg.multi_asset_check(specs=raw_check_specs(), can_subset=True, name="raw_extracts_expectations",
                      description="Great Expectations gates on one country-day of raw extracts.")
def raw_extracts_expectations(context: dg.AssetCheckExecutionContext, home: HomeResource):
    country, date = country_and_date(context)
    datasets = sorted(key.asset_key.to_user_string() for key in context.selected_asset_check_keys)
    with stage("gx"):
        results = [check_result(r, context) for r in check_partitions(home.home, datasets, country, date)]
    yield from results


@dg.asset_check(asset="user_features", name=CHECK_NAME, blocking=True, partitions_def=country_day_partitions,
                automation_condition=AUTOMATION,
                description=check_description("user_features") + " Also: one row per raw user of the day.",
                metadata={"suite": dg.MetadataValue.path(str(quality.suite_path("user_features")))})
def user_features_expectations(context: dg.AssetCheckExecutionContext, home: HomeResource) -> dg.AssetCheckResult:
    country, date = country_and_date(context)
    with stage("gx"):
        (result,) = check_partitions(home.home, ["user_features"], country, date)
        return check_result(result, context)
