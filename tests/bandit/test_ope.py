"""Off-policy estimators against a synthetic contextual bandit whose true policy values are known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pushgrowth.bandit.ope import (
    Estimate,
    direct_method,
    doubly_robust,
    evaluate,
    importance_weights,
    ips,
    on_policy,
    snips,
)

K, D = 5, 3                      # actions, context dimension
EPSILON = 0.1                    # exploration floor of the logging policy: propensities >= EPSILON / K
_params = np.random.default_rng(0)
THETA = _params.normal(size=(K, D))          # true reward: mu(x, a) = sigmoid(THETA[a] . x + BIAS[a])
BIAS = _params.normal(scale=0.5, size=K)
LOGGING_SCORES = _params.normal(size=(K, D))  # logging policy scores, unrelated to the reward
SEEDS, N = range(50), 4000


def _softmax(scores: np.ndarray) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def mu(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(x @ THETA.T + BIAS)))


def logging_policy(x: np.ndarray) -> np.ndarray:
    return (1 - EPSILON) * _softmax(x @ LOGGING_SCORES.T) + EPSILON / K


def target_policy(x: np.ndarray) -> np.ndarray:
    """Leans towards the truly better actions, so its value differs clearly from the logging policy's."""
    return _softmax(3 * (x @ THETA.T + BIAS))


def _true_value(policy) -> float:
    x = np.random.default_rng(12345).normal(size=(1_000_000, D))
    return float(np.mean(np.sum(policy(x) * mu(x), axis=1)))


def simulate(seed: int, n: int = N) -> dict[str, np.ndarray]:
    """One log of n decisions drawn by the logging policy, with the columns every estimator needs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D))
    p0, pe, m = logging_policy(x), target_policy(x), mu(x)
    action = np.minimum((p0.cumsum(axis=1) < rng.random(n)[:, None]).sum(axis=1), K - 1)
    rows = np.arange(n)
    return {
        "rewards": (rng.random(n) < m[rows, action]).astype(float),
        "logging_propensity": p0[rows, action],
        "target_probability": pe[rows, action],
        "q_logged": m[rows, action],              # a correct reward model
        "v_target": np.sum(pe * m, axis=1),
        "q_bad": 1 - m[rows, action],             # a badly wrong one: predicts the opposite
        "v_bad": np.sum(pe * (1 - m), axis=1),
    }


def _log_args(log: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return log["rewards"], log["logging_propensity"], log["target_probability"]


@pytest.fixture(scope="module")
def truth() -> dict[str, float]:
    return {"target": _true_value(target_policy), "logging": _true_value(logging_policy)}


@pytest.fixture(scope="module")
def runs() -> list[dict[str, Estimate]]:
    """Every estimator on each of the 50 seeded logs, computed once for the coverage tests."""
    out = []
    for seed in SEEDS:
        log = simulate(seed)
        est = evaluate(*_log_args(log), q_logged=log["q_logged"], v_target=log["v_target"])
        est["dr_bad"] = doubly_robust(*_log_args(log), log["q_bad"], log["v_bad"])
        est["dr_zero"] = doubly_robust(*_log_args(log), np.zeros(N), np.zeros(N))
        est["dm_bad"] = direct_method(log["v_bad"])
        est["on_policy"] = on_policy(log["rewards"])
        out.append(est)
    return out


def _coverage(runs: list[dict[str, Estimate]], name: str, value: float) -> float:
    return float(np.mean([r[name].ci_low <= value <= r[name].ci_high for r in runs]))


# --- the synthetic problem ------------------------------------------------------------------------------------


def test_target_policy_differs_from_logging_policy(truth, runs):
    """Otherwise reweighting would not matter and the coverage tests would prove nothing."""
    assert truth["target"] - truth["logging"] > 0.1
    assert _coverage(runs, "on_policy", truth["target"]) == 0
    assert _coverage(runs, "on_policy", truth["logging"]) >= 0.85


@pytest.mark.parametrize("name", ["ips", "snips", "dr", "dr_bad"])
def test_intervals_cover_the_true_value(truth, runs, name):
    assert _coverage(runs, name, truth["target"]) >= 0.85


@pytest.mark.parametrize("name", ["ips", "dr", "dr_bad"])
def test_unbiased_estimators_average_to_the_truth(truth, runs, name):
    values = np.array([r[name].value for r in runs])
    assert abs(values.mean() - truth["target"]) < 3 * values.std(ddof=1) / math.sqrt(len(values))


def test_dr_with_a_correct_model_has_smaller_standard_error_than_ips(runs):
    dr_se = np.array([r["dr"].std_error for r in runs])
    ips_se = np.array([r["ips"].std_error for r in runs])
    assert np.all(dr_se < ips_se)
    assert dr_se.mean() < 0.8 * ips_se.mean()


def test_dr_with_zero_model_is_ips(runs):
    for r in runs:
        assert r["dr_zero"].value == pytest.approx(r["ips"].value, rel=1e-12)
        assert r["dr_zero"].std_error == pytest.approx(r["ips"].std_error, rel=1e-9)


def test_dm_inherits_the_bias_of_a_wrong_model_that_dr_corrects(truth, runs):
    assert _coverage(runs, "dm", truth["target"]) >= 0.85       # correct model: DM is fine
    assert _coverage(runs, "dm_bad", truth["target"]) == 0       # wrong model: DM is confidently wrong
    assert _coverage(runs, "dr_bad", truth["target"]) >= 0.85   # ... while DR with the same model is not


def test_weight_diagnostics_in_the_synthetic_problem(runs):
    for r in runs:
        assert 0 < r["ips"].ess < N
        assert r["ips"].ess == r["snips"].ess == r["dr"].ess
        assert r["ips"].max_weight <= K / EPSILON
        assert r["dm"].ess == N and r["dm"].max_weight == 0


# --- on-policy data -------------------------------------------------------------------------------------------


def test_on_policy_data_recovers_the_sample_mean():
    rng = np.random.default_rng(1)
    rewards = rng.gamma(2.0, 3.0, size=1000)
    propensity = rng.uniform(0.05, 1.0, size=1000)
    mean = float(np.mean(rewards))
    assert ips(rewards, propensity, propensity).value == pytest.approx(mean, rel=1e-12)
    assert snips(rewards, propensity, propensity).value == mean
    base = on_policy(rewards)
    assert base.value == mean
    assert base.std_error == pytest.approx(np.std(rewards, ddof=1) / math.sqrt(1000))
    assert (base.estimator, base.ess, base.max_weight, base.n) == ("on_policy", 1000.0, 1.0, 1000)


def test_interval_is_symmetric_and_widens_with_confidence():
    rng = np.random.default_rng(2)
    rewards, propensity = rng.random(500), rng.uniform(0.1, 1, 500)
    target = rng.uniform(0, 1, 500)
    narrow = ips(rewards, propensity, target, alpha=0.2)
    wide = ips(rewards, propensity, target, alpha=0.01)
    assert narrow.value == wide.value
    assert wide.ci_low < narrow.ci_low < narrow.value < narrow.ci_high < wide.ci_high
    assert wide.ci_high - wide.value == pytest.approx(2.5758293 * wide.std_error)
    assert wide.value - wide.ci_low == pytest.approx(wide.ci_high - wide.value)


# --- weights, ESS, clipping -----------------------------------------------------------------------------------


def test_ess_is_n_for_uniform_weights():
    n = 300
    w = importance_weights(np.full(n, 0.5), np.full(n, 0.2))
    assert np.allclose(w, 2.5)
    est = ips(np.random.default_rng(3).random(n), np.full(n, 0.2), np.full(n, 0.5))
    assert est.ess == pytest.approx(n)
    assert est.max_weight == pytest.approx(2.5)


def test_ess_is_small_when_weights_are_concentrated():
    n = 1000
    propensity = np.full(n, 0.5)
    target = np.full(n, 0.001)
    propensity[:5], target[:5] = 0.001, 1.0         # five rows carry nearly all the weight
    est = snips(np.random.default_rng(4).random(n), propensity, target)
    assert est.ess < 10
    assert est.max_weight == pytest.approx(1000)


def test_clip_caps_weights_and_trades_bias_for_variance():
    log = simulate(seed=7)
    raw = ips(*_log_args(log))
    clipped = ips(*_log_args(log), clip=5.0)
    assert raw.max_weight > 5.0
    assert clipped.max_weight == 5.0
    assert importance_weights(log["target_probability"], log["logging_propensity"], clip=5.0).max() == 5.0
    assert clipped.std_error < raw.std_error
    assert clipped.value < raw.value                  # rewards >= 0: clipping biases IPS downwards
    assert clipped.ess > raw.ess
    # a clip above every weight changes nothing
    assert ips(*_log_args(log), clip=raw.max_weight + 1) == raw


def test_target_never_picks_a_logged_action():
    rewards, propensity, target = np.array([1.0, 0.0, 1.0]), np.array([0.5, 0.2, 0.9]), np.zeros(3)
    est = snips(rewards, propensity, target)
    assert math.isnan(est.value) and math.isnan(est.ci_low) and math.isnan(est.ci_high)
    assert est.ess == 0 and est.max_weight == 0 and est.n == 3
    out = evaluate(rewards, propensity, target, q_logged=np.ones(3), v_target=np.full(3, 0.3))
    assert out["ips"].value == 0
    assert out["ips"].ess == 0
    assert math.isnan(out["snips"].value)
    assert out["dr"].value == pytest.approx(0.3)
    assert out["dm"].value == pytest.approx(0.3)


def test_evaluate_keys_and_to_dict():
    log = simulate(seed=8, n=200)
    assert set(evaluate(*_log_args(log))) == {"ips", "snips"}
    full = evaluate(*_log_args(log), q_logged=log["q_logged"], v_target=log["v_target"], alpha=0.1, clip=20)
    assert set(full) == {"ips", "snips", "dr", "dm"}
    assert all(est.estimator == name for name, est in full.items())
    assert full["ips"] == ips(*_log_args(log), alpha=0.1, clip=20)
    d = full["dr"].to_dict()
    assert list(d) == ["estimator", "value", "std_error", "ci_low", "ci_high", "n", "ess", "max_weight"]
    assert d["estimator"] == "dr" and d["n"] == 200


def test_single_row_has_no_standard_error():
    est = ips([1.0], [0.5], [0.5])
    assert est.value == 1.0 and est.n == 1
    assert math.isnan(est.std_error) and math.isnan(est.ci_low)


def test_tiny_weights_do_not_underflow():
    """Found by hypothesis: with a subnormal weight, sum(w^2) and mean(w) underflowed to 0
    (ESS 0, SNIPS > max r)."""
    rewards, propensity, target = np.array([0.0, 0.75]), np.ones(2), np.array([0.0, 5e-324])
    est = snips(rewards, propensity, target)
    assert est.value == 0.75
    assert est.ess == pytest.approx(1.0)
    assert est.max_weight == 5e-324
    assert ips(rewards, propensity, target).ess == pytest.approx(1.0)
    # SNIPS and ESS are scale-free: subnormal weights give the same answer as the same weights scaled up
    tiny = snips([0.2, 0.6, 0.4], [1.0, 1.0, 1.0], [1e-310, 3e-310, 2e-310])
    scaled = snips([0.2, 0.6, 0.4], [1.0, 1.0, 1.0], [0.1, 0.3, 0.2])
    assert tiny.value == pytest.approx(scaled.value) == pytest.approx((0.2 + 0.6 * 3 + 0.4 * 2) / 6)
    assert tiny.std_error == pytest.approx(scaled.std_error)
    assert tiny.ess == pytest.approx(scaled.ess) == pytest.approx(36 / 14)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(1e-3, 1), st.floats(0, 1)), min_size=2, max_size=50))
def test_estimates_stay_in_range(rows):
    rewards, propensity, target = (np.array(c) for c in zip(*rows))
    est = snips(rewards, propensity, target)
    if np.all(target == 0):
        assert math.isnan(est.value) and est.ess == 0
        return
    assert rewards.min() - 1e-12 <= est.value <= rewards.max() + 1e-12   # SNIPS is a weighted mean of rewards
    assert 1 - 1e-9 <= est.ess <= len(rows) + 1e-9
    assert est.ci_low <= est.value <= est.ci_high


# --- validation -----------------------------------------------------------------------------------------------

GOOD = {"rewards": [1.0, 0.0, 1.0], "logging_propensity": [0.5, 0.2, 0.9], "target_probability": [0.1, 0.2, 0.3]}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"rewards": [1.0, 0.0]}, "rewards"),
        ({"target_probability": [0.1, 0.2]}, "target_probability"),
        ({"logging_propensity": [0.5, 0.0, 0.9]}, "logging_propensity"),
        ({"logging_propensity": [0.5, -0.1, 0.9]}, "logging_propensity"),
        ({"logging_propensity": [0.5, 1.2, 0.9]}, "logging_propensity"),
        ({"target_probability": [0.1, 1.5, 0.3]}, "target_probability"),
        ({"target_probability": [0.1, -0.5, 0.3]}, "target_probability"),
        ({"rewards": [1.0, np.nan, 1.0]}, "rewards"),
        ({"logging_propensity": [0.5, np.nan, 0.9]}, "logging_propensity"),
        ({"target_probability": [np.inf, 0.2, 0.3]}, "target_probability"),
        ({"rewards": [], "logging_propensity": [], "target_probability": []}, "rewards is empty"),
        ({"rewards": [[1.0, 0.0, 1.0]]}, "rewards must be a 1-D"),
    ],
)
@pytest.mark.parametrize("estimator", [ips, snips, evaluate])
def test_invalid_inputs_name_the_argument(estimator, change, match):
    with pytest.raises(ValueError, match=match):
        estimator(**{**GOOD, **change})


def test_invalid_model_inputs_name_the_argument():
    with pytest.raises(ValueError, match="q_logged"):
        doubly_robust(**GOOD, q_logged=[0.1, 0.2], v_target=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="v_target"):
        doubly_robust(**GOOD, q_logged=[0.1, 0.2, 0.3], v_target=[0.1, np.nan, 0.3])
    with pytest.raises(ValueError, match="v_target"):
        direct_method([])
    with pytest.raises(ValueError, match="q_logged and v_target"):
        evaluate(**GOOD, q_logged=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="rewards"):
        on_policy([1.0, np.nan])


@pytest.mark.parametrize("kwargs", [{"alpha": 0.0}, {"alpha": 1.0}, {"clip": 0.0}, {"clip": -1.0},
                                    {"clip": np.inf}])
def test_invalid_alpha_and_clip(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        ips(**GOOD, **kwargs)
