"""landing_zone_sensor: one run request per complete (date, country) drop, once per delivery."""

import datetime as dt

import dagster as dg
import pytest

from pushgrowth.defs.extracts.sensors import landing_zone_sensor
from pushgrowth.definitions import defs
from pushgrowth.landing.zone import write_drop

DAY = dt.date(2026, 9, 1)
NEXT = DAY + dt.timedelta(days=1)


@pytest.fixture
def tick(resources):
    """Evaluate the sensor once from `cursor`; returns the SensorResult."""

    def evaluate(cursor: str | None = None) -> dg.SensorResult:
        context = dg.build_sensor_context(cursor=cursor, resources=resources,
                                          repository_def=defs.get_repository_def())
        return landing_zone_sensor(context)

    return evaluate


def requested(result) -> list[tuple[str, str]]:
    return [(r.partition_key.keys_by_dimension["country"], r.partition_key.keys_by_dimension["date"])
            for r in result.run_requests]


def test_one_request_per_complete_drop(home, tick, extracts):
    drops = [write_drop(home.landing, c, d, extracts[d][c]) for d in (DAY, NEXT) for c in ("MLA", "MLB")]
    drops[-1].marker.unlink()  # MLB 2026-09-02 is still being delivered

    result = tick()

    assert sorted(requested(result)) == [("MLA", "2026-09-01"), ("MLA", "2026-09-02"), ("MLB", "2026-09-01")]
    assert result.skip_reason is None
    by_partition = {f"{d.country}|{d.date.isoformat()}": d for d in drops[:3]}
    for request in result.run_requests:
        drop = by_partition[request.partition_key]
        assert isinstance(request.partition_key, dg.MultiPartitionKey)
        assert request.partition_key == dg.MultiPartitionKey({"country": drop.country,
                                                              "date": drop.date.isoformat()})
        assert request.run_key == f"{drop.country}|{drop.date.isoformat()}|{drop.digest()}"
        assert request.tags["pushgrowth/landing_digest"] == drop.digest()
    assert [r.run_key for r in tick().run_requests] == [r.run_key for r in result.run_requests]


def test_returned_cursor_requests_nothing_twice(home, tick, extracts):
    write_drop(home.landing, "MLA", DAY, extracts[DAY]["MLA"])
    first = tick()
    assert len(first.run_requests) == 1

    second = tick(first.cursor)

    assert second.run_requests == []
    assert second.skip_reason.skip_message == "no new complete drops in the landing zone"


def test_marker_appearing_later_is_requested_then(home, tick, extracts):
    drop = write_drop(home.landing, "MLA", DAY, extracts[DAY]["MLA"])
    marker = drop.marker.read_bytes()
    drop.marker.unlink()
    first = tick()
    assert first.run_requests == []

    drop.marker.write_bytes(marker)
    second = tick(first.cursor)

    assert requested(second) == [("MLA", "2026-09-01")]


def test_redelivered_drop_is_requested_again(home, tick, extracts, other_extracts):
    write_drop(home.landing, "MLA", DAY, extracts[DAY]["MLA"])
    write_drop(home.landing, "MLB", DAY, extracts[DAY]["MLB"])
    first = tick()

    write_drop(home.landing, "MLA", DAY, other_extracts[DAY]["MLA"])
    second = tick(first.cursor)

    assert requested(second) == [("MLA", "2026-09-01")]
    old_key = next(r.run_key for r in first.run_requests if r.partition_key.startswith("MLA"))
    assert second.run_requests[0].run_key != old_key
    assert tick(second.cursor).run_requests == []


def test_drops_outside_the_partitions_are_skipped(home, tick, extracts):
    write_drop(home.landing, "MLZ", DAY, extracts[DAY]["MLA"])
    write_drop(home.landing, "MLA", DAY - dt.timedelta(days=1), extracts[DAY]["MLA"])
    write_drop(home.landing, "MLB", NEXT, extracts[NEXT]["MLB"])

    result = tick()

    assert requested(result) == [("MLB", "2026-09-02")]


def test_empty_landing_zone_gives_a_skip_reason(home, resources, tick):
    missing = tick()
    assert missing.run_requests == [] and missing.skip_reason
    home.landing.mkdir(parents=True)

    context = dg.build_sensor_context(resources=resources, repository_def=defs.get_repository_def())
    empty = landing_zone_sensor.evaluate_tick(context)  # through Dagster's tick machinery

    assert empty.run_requests == []
    assert empty.skip_message == "no new complete drops in the landing zone"


def test_requested_partition_runs_the_job(home, tick, extracts, monkeypatch):
    """The request is runnable as is: the job, with its default home resource, loads that partition."""
    write_drop(home.landing, "MLB", NEXT, extracts[NEXT]["MLB"])
    (request,) = tick().run_requests
    monkeypatch.setenv("PUSHGROWTH_HOME", str(home.root))

    result = defs.resolve_job_def("raw_extracts_job").execute_in_process(
        partition_key=request.partition_key, tags=request.tags)

    assert result.success
    assert (home.lake / "raw/users/country=MLB/date=2026-09-02/part-0.parquet").exists()
    assert sorted(p.parent.parent.name for p in home.lake.rglob("*.parquet")) == ["country=MLB"] * 7
