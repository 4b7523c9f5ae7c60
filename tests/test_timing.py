"""The loop's stage timer: exclusive times, a clean hand-over between runs, and per-stage profiles."""

import pstats

import pytest

from pushgrowth import timing


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    timing.take()  # whatever an earlier test left
    fake = Clock()
    monkeypatch.setattr(timing.time, "perf_counter", fake)
    yield fake
    timing.enable_profiling(None)
    timing.take()


def test_a_stage_inside_another_is_taken_out_of_it(clock):
    with timing.stage("dagster"):
        clock.now += 1.0
        with timing.stage("dbt"):
            clock.now += 5.0
            with timing.stage("wait"):
                clock.now += 0.5
            clock.now += 0.25
        clock.now += 2.0
        with timing.stage("dbt"):
            clock.now += 1.0
    assert timing.take() == {"dagster": 3.0, "dbt": 6.25, "wait": 0.5}


def test_take_hands_over_and_starts_from_zero(clock):
    with timing.stage("world"):
        clock.now += 2.0
    assert timing.take() == {"world": 2.0}
    assert timing.take() == {}
    assert timing.add({"world": 1.0}, {"world": 2.0, "oracle": 3.0}) == {"world": 3.0, "oracle": 3.0}


def test_a_failing_block_is_still_counted(clock):
    with pytest.raises(RuntimeError), timing.stage("gate"):
        clock.now += 4.0
        raise RuntimeError("boom")
    assert timing.take() == {"gate": 4.0}


def test_an_unknown_stage_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown timing stage 'dbtt'.*dbt"), timing.stage("dbtt"):
        pass


def test_timed_runs_a_function_as_a_stage(clock):
    @timing.timed("report")
    def render(x: int) -> int:
        clock.now += 1.5
        return x * 2

    assert render(21) == 42 and render(1) == 2 and render.__name__ == "render"
    assert timing.take() == {"report": 3.0}


def _inner_work() -> int:
    return sum(range(1000))


def _outer_work() -> int:
    return sum(range(10))


def test_profiles_are_written_per_stage_and_merged(tmp_path):
    timing.take()
    timing.enable_profiling(tmp_path)
    try:
        for _ in range(2):
            with timing.stage("dagster"):
                _outer_work()
                with timing.stage("dbt"):
                    _inner_work()
            timing.take()
    finally:
        timing.enable_profiling(None)
    assert len(list(tmp_path.glob("dbt-*.prof"))) == 2
    merged = timing.merge_profiles(tmp_path)
    assert sorted(merged) == ["dagster", "dbt"] and not list(tmp_path.glob("*-*.prof"))
    functions = {name: {f[2] for f in pstats.Stats(str(path)).stats} for name, path in merged.items()}
    assert "_inner_work" in functions["dbt"] and "_inner_work" not in functions["dagster"]
    assert "_outer_work" in functions["dagster"] and "_outer_work" not in functions["dbt"]
    calls = {f[2]: v[1] for f, v in pstats.Stats(str(merged["dbt"])).stats.items()}
    assert calls["_inner_work"] == 2  # both runs' dumps added up
