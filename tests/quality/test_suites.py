"""The suites and `pushgrowth.quality`, without Dagster: contract coverage, clean data, failures, Data Docs."""

import datetime as dt
import json

import pandas as pd
import pytest

from pushgrowth import quality
from pushgrowth.landing.contract import TABLES
from pushgrowth.sim import World, WorldConfig
from tests.quality.conftest import DAY, NEXT_DAY, user_features_frame


def expectations(suite) -> set[tuple[str, str]]:
    """(type, column or joined column list) of every expectation in a suite."""
    out = set()
    for e in suite.expectations:
        config = e.configuration
        column = config.kwargs.get("column") or ",".join(config.kwargs.get("column_list") or [])
        out.add((config.type, column))
    return out


def test_one_json_suite_per_dataset_named_after_its_file():
    assert sorted(p.stem for p in quality.EXPECTATIONS_DIR.glob("*.json")) == sorted(quality.SUITES)
    for name in quality.SUITES:
        suite = quality.load_suite(name)
        assert suite.name == name
        assert json.loads(quality.suite_path(name).read_text())["name"] == name


@pytest.mark.parametrize("table", sorted(TABLES))
def test_raw_suite_covers_the_contract(table):
    """Every non-nullable contract column is not-null, the primary key is unique, the columns match exactly."""
    table_def = TABLES[table]
    found = expectations(quality.load_suite(f"raw_{table}"))
    for column in table_def.columns:
        if not column.nullable:
            assert ("expect_column_values_to_not_be_null", column.name) in found, column.name
    key = table_def.primary_key
    unique = (("expect_column_values_to_be_unique", key[0]) if len(key) == 1
              else ("expect_compound_columns_to_be_unique", ",".join(key)))
    assert unique in found
    assert ("expect_table_columns_to_match_set", "") in found


def test_ranges_and_accepted_values_are_in_the_suites():
    orders = {e.configuration.kwargs.get("column"): e.configuration.kwargs
              for e in quality.load_suite("raw_orders").expectations
              if e.configuration.type == "expect_column_values_to_be_between"}
    assert orders["gmv"]["min_value"] == 0 and orders["gmv"]["strict_min"] and orders["gmv"]["max_value"] > 0
    sends = {(e.configuration.kwargs.get("column"), tuple(e.configuration.kwargs.get("value_set", ())))
             for e in quality.load_suite("raw_push_sends").expectations}
    assert ("status", ("delivered", "failed")) in sends
    features = {e.configuration.kwargs.get("column"): e.configuration.kwargs
                for e in quality.load_suite("user_features").expectations
                if e.configuration.type == "expect_column_values_to_be_between"}
    for column in ("open_rate_28d", "share_sessions_morning", "share_sessions_weekend"):
        assert (features[column]["min_value"], features[column]["max_value"]) == (0, 1), column


def test_clean_world_extracts_pass_every_raw_suite(busy_days):
    for day, tables in busy_days.items():
        previous = busy_days.get(day - dt.timedelta(days=1))
        for name, table in tables.items():
            dataset = f"raw_{name}"
            extra = quality.partition_expectations(
                dataset, "MLA", day, previous_rows=previous[name].num_rows if previous else None)
            result = quality.validate(quality.to_frame(table), dataset, extra)
            assert result.success, result.summary()
            assert result.rows == table.num_rows > 0


def test_a_world_day_without_pushes_passes_too():
    """Empty push tables (no campaign ran) are valid: only users must have rows."""
    day = World(WorldConfig.build(("MLA",), users=300, seed=1)).step()["MLA"]
    assert day["push_sends"].num_rows == 0
    for name, table in day.items():
        result = quality.validate(quality.to_frame(table), f"raw_{name}",
                                  quality.partition_expectations(f"raw_{name}", "MLA", DAY))
        assert result.success, result.summary()


def test_row_count_floor_comes_from_the_previous_day_only_where_a_collapse_means_breakage():
    def row_count_minimum(dataset, previous):
        found = [e for e in quality.partition_expectations(dataset, "MLA", NEXT_DAY, previous_rows=previous)
                 if e.expectation_type == "expect_table_row_count_to_be_between"]
        return found[0].min_value if found else None

    assert row_count_minimum("raw_sessions", 101) == 51  # ceil(0.5 * 101)
    assert row_count_minimum("raw_users", 300) == 270
    assert row_count_minimum("raw_sessions", None) is None  # no previous day: nothing to compare with
    assert row_count_minimum("raw_orders", 40) is None


def test_failures_name_the_expectation_the_column_and_what_was_seen(busy_days):
    sends = quality.to_frame(busy_days[DAY]["push_sends"])
    sends.loc[:2, "trace_id"] = None
    sends.loc[5, "status"] = "bounced"
    sends.loc[6, "idempotency_key"] = sends.loc[7, "idempotency_key"]

    result = quality.validate(sends, "raw_push_sends")

    assert not result.success
    seen = {(f.expectation, f.column): f for f in result.failures}
    assert set(seen) == {("expect_column_values_to_not_be_null", "trace_id"),
                         ("expect_column_values_to_be_in_set", "status"),
                         ("expect_column_values_to_be_unique", "idempotency_key")}
    assert seen["expect_column_values_to_not_be_null", "trace_id"].unexpected_count == 3
    assert "bounced" in seen["expect_column_values_to_be_in_set", "status"].observed
    table = result.markdown()
    assert table.startswith("| expectation | column | expected | observed |")
    assert "| expect_column_values_to_not_be_null | trace_id |  | 3 of 1209 rows |" in table
    assert result.summary().startswith("raw_push_sends: 3 of ")


def test_user_features_shares_and_open_rate_stay_within_zero_and_one(busy_days):
    users = busy_days[DAY]["users"]
    clean = user_features_frame(users)
    extra = quality.partition_expectations("user_features", "MLA", DAY, users_rows=users.num_rows)
    clean_result = quality.validate(clean, "user_features", extra)
    assert clean_result.success, clean_result.summary()

    broken = clean.copy()
    broken.loc[0, "open_rate_28d"] = 1.5
    broken.loc[1, "share_sessions_night"] = -0.1
    broken = pd.concat([broken, broken.iloc[[2]]], ignore_index=True)  # a fan-out: one user twice
    result = quality.validate(broken, "user_features", extra)

    assert {(f.expectation, f.column) for f in result.failures} == {
        ("expect_column_values_to_be_between", "open_rate_28d"),
        ("expect_column_values_to_be_between", "share_sessions_night"),
        ("expect_compound_columns_to_be_unique", "country, date, user_id"),
        ("expect_table_row_count_to_equal", None),
    }


def test_data_docs_are_built_under_the_home_folder(busy_days, home):
    frame = quality.to_frame(busy_days[DAY]["opt_outs"])
    docs = home.reports / "data_docs"

    result = quality.validate(frame, "raw_opt_outs", data_docs_dir=docs, gx_root=home.root / "gx",
                              run_name="MLA 2026-09-01")

    assert result.success and result.docs_error is None
    assert result.data_docs.is_file() and result.data_docs.is_relative_to(docs)
    assert "raw_opt_outs" in result.data_docs.read_text()
    assert (docs / "index.html").is_file()
    assert (home.root / "gx" / "gx" / "great_expectations.yml").is_file()


def test_data_docs_compile_their_templates_once_per_process(busy_days, home, monkeypatch):
    """GX builds new views for every publish; the site's views share compiled templates, so only the first
    publish of a process compiles them, and later pages are rendered all the same."""
    import jinja2

    from pushgrowth.quality import docs_views

    frame = quality.to_frame(busy_days[DAY]["opt_outs"])
    docs = home.reports / "data_docs"
    docs_views.TEMPLATES.clear()
    compiled = []
    compile_ = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile",
                        lambda self, *args, **kwargs: compiled.append(1) or compile_(self, *args, **kwargs))
    pages = []
    for day in range(3):
        before = len(compiled)
        result = quality.validate(frame, "raw_opt_outs", data_docs_dir=docs, gx_root=home.root / "gx",
                                  run_name=f"MLA day {day}")
        assert result.docs_error is None
        pages.append(result.data_docs)
        assert (len(compiled) > before) == (day == 0), (day, len(compiled) - before)
    assert len(set(pages)) == 3 and all("raw_opt_outs" in page.read_text() for page in pages)
    index = (docs / "index.html").read_text()
    assert all(f"MLA%20day%20{day}" in index for day in range(3))  # every run is listed on the index


def test_user_features_tone_history_never_has_more_opens_than_pushes(busy_days):
    users = busy_days[DAY]["users"]
    clean = user_features_frame(users)
    clean.loc[:, "tone_pushes_urgency"] = 3
    clean.loc[:, "tone_opens_urgency"] = 1
    extra = quality.partition_expectations("user_features", "MLA", DAY, users_rows=users.num_rows)
    assert quality.validate(clean, "user_features", extra).success
    broken = clean.copy()
    broken.loc[0, "tone_opens_urgency"] = 4
    broken.loc[1, "tone_pushes_benefit"] = -1
    result = quality.validate(broken.drop(columns="tone_opens_curiosity"), "user_features", extra)
    failures = {(f.expectation, f.column) for f in result.failures}
    assert ("expect_column_pair_values_a_to_be_greater_than_b", "tone_pushes_urgency, tone_opens_urgency") in failures
    assert ("expect_column_values_to_be_between", "tone_pushes_benefit") in failures
    assert any(f[0] == "expect_table_columns_to_match_set" for f in failures)
