"""The blocking checks in Dagster: `dg.materialize` of raw assets, checks and a downstream asset
per country-day."""

import datetime as dt

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pushgrowth.defs.extracts.assets import raw_extracts
from pushgrowth.defs.partitions import country_and_date, country_day_partitions
from pushgrowth.defs.quality.checks import CHECK_NAME, raw_extracts_expectations, user_features_expectations
from pushgrowth.defs.resources import HomeResource
from pushgrowth.landing.contract import TABLES
from pushgrowth.landing.zone import write_drop
from pushgrowth.storage import dataset
from pushgrowth.storage import lake as store
from tests.quality.conftest import DAY, NEXT_DAY, user_features_frame


def key(date: dt.date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"country": "MLA", "date": date.isoformat()})


def downstream_of(upstream: str, ran: list) -> dg.AssetsDefinition:
    """A tiny asset after `upstream` that records every partition it runs for."""

    @dg.asset(name=f"after_{upstream}", deps=[upstream], partitions_def=country_day_partitions)
    def after(context: dg.AssetExecutionContext) -> None:
        ran.append(context.partition_key)

    return after


def run(resources, date, *assets, selection=None):
    return dg.materialize([raw_extracts, raw_extracts_expectations, *assets], partition_key=key(date),
                          resources=resources, selection=selection, raise_on_error=False)


def evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {ev.asset_key.to_user_string(): ev for ev in result.get_asset_check_evaluations()}


def assert_blocked(result, dataset: str, expectation: str, column: str | None, ran: list) -> None:
    """The dataset's check failed, says why in its description and metadata, and nothing downstream ran."""
    assert not result.success
    evaluation = evaluations(result)[dataset]
    assert evaluation.check_name == CHECK_NAME and not evaluation.passed
    assert evaluation.description.startswith(f"{dataset}: ")
    assert expectation in evaluation.description
    metadata = evaluation.metadata
    assert metadata["dataset"].value == dataset
    failures = metadata["failures"].value
    assert f"| {expectation} | {column or '(table)'} |" in failures
    assert metadata["data_docs"].value.endswith(".html")
    assert ran == []


def test_clean_days_pass_every_check_and_downstream_runs(home, resources, small_days):
    ran, evaluated = [], []
    for date in (DAY, NEXT_DAY):
        write_drop(home.landing, "MLA", date, small_days[date])
        result = run(resources, date, downstream_of("raw_users", ran))

        assert result.success
        checks = evaluations(result)
        assert sorted(checks) == sorted(f"raw_{t}" for t in TABLES)
        assert all(ev.passed for ev in checks.values()), {k: ev.description for k, ev in checks.items()}
        users = checks["raw_users"].metadata
        assert users["partition"].value == f"MLA|{date}"
        assert users["dagster/row_count"].value == small_days[date]["users"].num_rows
        assert users["failed_expectations"].value == 0
        evaluated.append(users["evaluated_expectations"].value)
    assert ran == ["MLA|2026-09-01", "MLA|2026-09-02"]
    assert evaluated[1] == evaluated[0] + 1  # the second day is also compared with the first day's row count
    docs = home.reports / "data_docs"
    assert (docs / "index.html").is_file()
    assert len(list((docs / "validations").rglob("*.html"))) == 2 * len(TABLES)


def test_nulls_in_a_key_column_fail_the_check(home, resources, small_days):
    """Nulls injected into the lake after loading: the GX check itself must catch them."""
    write_drop(home.landing, "MLA", DAY, small_days[DAY])
    assert run(resources, DAY).success
    sends = store.read(home.lake, dataset("raw_push_sends"), "MLA", DAY)
    trace = sends.column("trace_id")
    nulled = pc.if_else(pc.less(pa.array(range(sends.num_rows)), 5), pa.nulls(sends.num_rows, pa.string()), trace)
    store.write(home.lake, dataset("raw_push_sends"), "MLA", DAY,
                    sends.set_column(sends.schema.get_field_index("trace_id"), "trace_id", nulled))
    ran = []
    after = downstream_of("raw_push_sends", ran)

    result = run(resources, DAY, after, selection=dg.AssetSelection.checks_for_assets(raw_extracts)
                 | dg.AssetSelection.assets(after))

    assert_blocked(result, "raw_push_sends", "expect_column_values_to_not_be_null", "trace_id", ran)
    assert "5 of " in evaluations(result)["raw_push_sends"].metadata["failures"].value
    assert evaluations(result)["raw_users"].passed


def test_a_value_out_of_range_fails_the_check(home, resources, small_days):
    orders = small_days[DAY]["orders"]
    gmv = pc.multiply(orders.column("gmv"), -1.0)
    write_drop(home.landing, "MLA", DAY, {**small_days[DAY], "orders": orders.set_column(
        orders.schema.get_field_index("gmv"), orders.schema.field("gmv"), gmv)})
    ran = []

    result = run(resources, DAY, downstream_of("raw_orders", ran))

    assert_blocked(result, "raw_orders", "expect_column_values_to_be_between", "gmv", ran)
    assert "> 0" in evaluations(result)["raw_orders"].metadata["failures"].value


def test_a_column_suddenly_all_null_fails_the_check(home, resources, small_days):
    users = small_days[DAY]["users"]
    index = users.schema.get_field_index("last_session_date")
    write_drop(home.landing, "MLA", DAY, {**small_days[DAY], "users": users.set_column(
        index, users.schema.field(index), pa.nulls(users.num_rows, pa.date32()))})
    ran = []

    result = run(resources, DAY, downstream_of("raw_users", ran))

    assert_blocked(result, "raw_users", "expect_column_proportion_of_non_null_values_to_be_between",
                   "last_session_date", ran)


def test_a_row_count_collapse_against_the_previous_day_fails_the_check(home, resources, small_days):
    write_drop(home.landing, "MLA", DAY, small_days[DAY])
    assert run(resources, DAY).success
    sessions = small_days[NEXT_DAY]["sessions"]
    write_drop(home.landing, "MLA", NEXT_DAY, {**small_days[NEXT_DAY], "sessions": sessions.slice(0, 10)})
    ran = []

    result = run(resources, NEXT_DAY, downstream_of("raw_sessions", ran))

    assert_blocked(result, "raw_sessions", "expect_table_row_count_to_be_between", None, ran)
    previous = small_days[DAY]["sessions"].num_rows
    assert f">= {-(-previous // 2)}" in evaluations(result)["raw_sessions"].metadata["failures"].value


@pytest.mark.parametrize("broken", [False, True])
def test_user_features_check_blocks_what_reads_user_features(home, resources, small_days, broken):
    """A stand-in for the dbt model writes the partition where the dbt asset exports it."""
    write_drop(home.landing, "MLA", DAY, small_days[DAY])
    assert run(resources, DAY).success
    frame = user_features_frame(small_days[DAY]["users"])
    if broken:
        frame.loc[0, "open_rate_28d"] = 1.5

    @dg.asset(key="user_features", partitions_def=country_day_partitions)
    def user_features(context: dg.AssetExecutionContext, home: HomeResource) -> None:
        country, date = country_and_date(context)
        store.write(home.home.lake, dataset("user_features"), country, date, pa.Table.from_pandas(frame))

    ran = []
    result = dg.materialize([user_features, user_features_expectations, downstream_of("user_features", ran)],
                            partition_key=key(DAY), resources=resources, raise_on_error=False)

    if broken:
        assert_blocked(result, "user_features", "expect_column_values_to_be_between", "open_rate_28d", ran)
    else:
        assert result.success, evaluations(result)["user_features"].description
        assert ran == ["MLA|2026-09-01"]


def test_a_check_run_before_its_partition_exists_fails_and_says_so(home, resources):
    ran = []
    after = downstream_of("raw_users", ran)

    result = run(resources, DAY, after, selection=dg.AssetSelection.checks_for_assets(raw_extracts)
                 | dg.AssetSelection.assets(after))

    users = evaluations(result)["raw_users"]
    assert not users.passed and ran == []
    assert users.description.startswith("raw_users: nothing validated: partition MLA|2026-09-01 not in the lake")
    assert "raw/users/country=MLA/date=2026-09-01" in users.description


def test_the_code_location_gates_every_raw_asset_user_features_and_assignments():
    from pushgrowth.definitions import defs

    graph = defs.resolve_asset_graph()
    gated = ({dg.AssetKey(f"raw_{t}") for t in TABLES}
             | {dg.AssetKey("user_features"), dg.AssetKey("daily_assignments")})
    checks = {k.asset_key: graph.get_check_spec(k) for k in graph.asset_check_keys if k.name == CHECK_NAME}
    assert set(checks) == gated
    for asset_key, spec in checks.items():
        assert spec.blocking, asset_key
        assert spec.partitions_def == graph.get(asset_key).partitions_def, asset_key
        assert spec.automation_condition is not None, asset_key
    # the sensor's job runs the raw checks in the same run as the raw assets
    job = defs.resolve_job_def("raw_extracts_job")
    assert {k for k in job.asset_layer.asset_graph.asset_check_keys if k.name == CHECK_NAME} == {
        dg.AssetCheckKey(dg.AssetKey(f"raw_{t}"), CHECK_NAME) for t in TABLES}
