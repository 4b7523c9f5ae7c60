"""MLflow tracking and registry of the country bandits, on a SQLite store under a temporary home folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pushgrowth.bandit import registry, training
from pushgrowth.bandit.features import FeatureSpec
from pushgrowth.bandit.model import RewardModel, fit
from pushgrowth.bandit.serving import ServingPolicy
from pushgrowth.home import Home
from tests.bandit.conftest import FAST, catalog, gate_case, synthetic_frame

TAGS = {"as_of": "2026-09-02", "dagster_run_id": "run-1"}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Home:
    """One store for the module: each test registers its own model name, so tests do not see each other."""
    return Home(tmp_path_factory.mktemp("registry") / "home")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(1200, seed=30)


@pytest.fixture(scope="module")
def model(frame) -> RewardModel:
    return fit(frame, FeatureSpec(reference_order_value=165.0), FAST)


def log(home: Home, model: RewardModel, country: str, frame: pd.DataFrame) -> registry.ModelRef:
    return registry.log_model(home, model, country, params={"heads": ",".join(model.heads), "rows": len(frame)},
                              metrics={"open_rounds": 12.0, "skipped": float("nan")}, tags=TAGS,
                              input_example=frame)


def test_log_model_registers_version_one_as_challenger(home, model, frame):
    assert registry.alias_ref(home, "LOG", registry.CHALLENGER) is None      # no model yet
    ref = log(home, model, "LOG", frame)
    assert (ref.name, ref.version) == ("pushgrowth-bandit-LOG", "1")
    assert ref.uri == "models:/pushgrowth-bandit-LOG/1"
    assert registry.alias_ref(home, "LOG", registry.CHALLENGER) == ref
    assert registry.alias_ref(home, "LOG", registry.CHAMPION) is None        # only the gate or a person sets it
    c = registry.client(home)
    assert c.get_model_version(ref.name, "1").tags["country"] == "LOG"
    run = c.get_run(ref.run_id)
    assert run.data.params == {"heads": ",".join(model.heads), "rows": "1200"}
    assert run.data.metrics == {"open_rounds": 12.0}                          # NaN metrics are left out
    assert run.data.tags["as_of"] == "2026-09-02" and run.data.tags["dagster_run_id"] == "run-1"
    assert run.info.run_name == "LOG 2026-09-02"
    spec = json.loads(open(c.download_artifacts(ref.run_id, "features.json")).read())
    assert spec["columns"] == list(model.spec.columns)
    # the next training is version 2 and takes the challenger alias
    again = log(home, model, "LOG", frame)
    assert again.version == "2" and again.run_id != ref.run_id
    assert registry.alias_ref(home, "LOG", registry.CHALLENGER) == again


def test_alias_ref_of_an_unknown_model_or_alias_is_none(home):
    assert registry.alias_ref(home, "NONE", registry.CHAMPION) is None
    assert registry.alias_ref(home, "NONE", "no-such-alias") is None


def test_set_alias_makes_a_version_champion(home, model, frame):
    first = log(home, model, "ALIAS", frame)
    assert registry.alias_ref(home, "ALIAS", registry.CHAMPION) is None
    registry.set_alias(home, first, registry.CHAMPION)
    assert registry.alias_ref(home, "ALIAS", registry.CHAMPION) == first
    second = log(home, model, "ALIAS", frame)
    assert registry.alias_ref(home, "ALIAS", registry.CHAMPION) == first     # a new version is only challenger
    assert registry.alias_ref(home, "ALIAS", registry.CHALLENGER) == second
    registry.set_alias(home, second, registry.CHAMPION)
    assert registry.alias_ref(home, "ALIAS", registry.CHAMPION) == second


def test_load_returns_the_same_model(home, model, frame):
    ref = log(home, model, "LOAD", frame)
    loaded = registry.load(home, ref)
    assert isinstance(loaded, RewardModel)
    assert loaded.spec == model.spec and set(loaded.heads) == set(model.heads)
    other = synthetic_frame(300, seed=31)
    again = loaded.predict(other, other)
    pd.testing.assert_frame_equal(again[list(model.heads)], model.predict(other, other), check_exact=True)
    # and as any MLflow consumer sees it: the pyfunc predicts every head from context + plan columns
    import mlflow

    pyfunc = mlflow.pyfunc.load_model(ref.uri)
    out = pyfunc.predict(other.head(20))
    np.testing.assert_array_equal(out["conversion"].to_numpy(), model.predict(other, other)["conversion"][:20])


@pytest.mark.parametrize("promoted", [True, False])
def test_record_gate_tags_the_version(home, model, frame, promoted):
    country = "GATE-PROMOTED" if promoted else "GATE-REJECTED"
    ref = log(home, model, country, frame)
    decision = {"promoted": promoted, "reason": "because " + "x" * 600, "metrics": {"ope_rows": 300.0}}
    registry.record_gate(home, ref, {"ope_rows": 300.0, "ope_difference": float("nan")}, "**evidence**", decision)
    c = registry.client(home)
    tags = c.get_model_version(ref.name, ref.version).tags
    assert tags["promotion"] == ("promoted" if promoted else "rejected")
    assert tags["promotion_reason"] == decision["reason"][:500]
    run = c.get_run(ref.run_id)
    assert run.data.metrics["ope_rows"] == 300.0 and "ope_difference" not in run.data.metrics
    assert open(c.download_artifacts(ref.run_id, "promotion_gate.md")).read() == "**evidence**"
    assert json.loads(open(c.download_artifacts(ref.run_id, "promotion_gate.json")).read())["promoted"] is promoted
    version = c.get_model_version(ref.name, ref.version)
    assert version.description.startswith("Heads: ") and "Trained on the decision log up to" in version.description
    verdict = "promoted to champion" if promoted else "not promoted"
    assert f"Gate: {verdict} against champion version none (cold start): because" in version.description
    assert tags["compared_champion"] == "none (cold start)"
    assert "contextual bandit" in c.get_registered_model(ref.name).description


def test_a_shuffled_challenger_is_registered_but_not_promoted(home):
    """The issue's requirement end to end: a model worse than the champion (trained on shuffled rewards) is
    logged and registered, the gate rejects it, its version says so, and the champion alias does not move."""
    case = gate_case(0, expected_rewards=True)
    example = case.frame.head(5)
    champion_ref = registry.log_model(home, case.real, "MLB", params={}, metrics={}, tags=TAGS,
                                      input_example=example)
    registry.set_alias(home, champion_ref, registry.CHAMPION)
    challenger_ref = registry.log_model(home, case.fake, "MLB", params={}, metrics={}, tags=TAGS,
                                        input_example=example)
    assert challenger_ref.version == "2"
    assert registry.alias_ref(home, "MLB", registry.CHALLENGER) == challenger_ref

    def serving(ref: registry.ModelRef) -> ServingPolicy:
        return ServingPolicy(model=registry.load(home, ref), model_name=ref.name, model_version=ref.version,
                             reference_order_value=165.0)

    champion = serving(registry.alias_ref(home, "MLB", registry.CHAMPION))
    challenger = serving(registry.alias_ref(home, "MLB", registry.CHALLENGER))
    gate = training.evaluate(case.result, catalog(), challenger, champion)
    assert not gate.promoted
    registry.record_gate(home, challenger_ref, gate.metrics, gate.markdown(), gate.to_dict())
    if gate.promoted:  # what the promotion asset would do; it must not happen here
        registry.set_alias(home, challenger_ref, registry.CHAMPION)

    c = registry.client(home)
    assert c.get_model_version(challenger_ref.name, "2").tags["promotion"] == "rejected"
    assert c.get_model_version(challenger_ref.name, "2").tags["promotion_reason"] == gate.reason[:500]
    assert registry.alias_ref(home, "MLB", registry.CHAMPION) == champion_ref
    assert registry.alias_ref(home, "MLB", registry.CHALLENGER) == challenger_ref
    assert c.get_run(challenger_ref.run_id).data.metrics["ope_rows"] == gate.metrics["ope_rows"]
