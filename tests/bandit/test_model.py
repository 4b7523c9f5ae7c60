"""The reward model: which heads are trained, the additivity that makes the factored policy exact, persistence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pushgrowth.bandit.features import ACTION_FEATURES, DIMENSIONS, FeatureSpec
from pushgrowth.bandit.model import HEADS, OBJECTIVE_HEADS, RewardModel, TrainConfig, fit, user_fold
from pushgrowth.bandit.policy import Options, Scores
from pushgrowth.campaigns import load_catalog
from tests.bandit.conftest import COUPON_CAMPAIGN, FAST, campaign, synthetic_context, synthetic_frame

SPEC = FeatureSpec(reference_order_value=165.0)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(3000, seed=1)


@pytest.fixture(scope="module")
def model(frame) -> RewardModel:
    return fit(frame, SPEC, FAST)


# --- which heads are trained ----------------------------------------------------------------------------------


def test_every_head_with_enough_rows_is_trained(model, frame):
    assert set(model.heads) == set(HEADS)
    delivered = int((frame["pushes_delivered"] > 0).sum())
    with_coupon = int(((frame["pushes_delivered"] > 0) & (frame["coupon_value"] > 0)).sum())
    assert model.trained_on == {"open": delivered, "conversion": delivered, "net_revenue": len(frame),
                                "redemption": with_coupon}
    assert 0 < with_coupon < delivered < len(frame)
    for name, head in model.heads.items():
        assert head.name == name and head.objective == HEADS[name]["objective"]
        assert head.metrics["rows"] == model.trained_on[name]
        assert 10 <= head.metrics["rounds"] <= FAST.max_rounds
        assert {"train_auc", "valid_auc"} <= set(head.metrics) if head.is_probability else \
            {"train_l2", "valid_l2"} <= set(head.metrics)
    assert set(OBJECTIVE_HEADS.values()) <= set(model.heads)


def test_label_means_are_the_weighted_means_of_the_labels(model, frame):
    delivered = frame[frame["pushes_delivered"] > 0]
    assert model.heads["open"].metrics["label_mean"] == pytest.approx(
        np.average(delivered["reward_open"], weights=delivered["pushes_delivered"]))
    assert model.heads["conversion"].metrics["label_mean"] == pytest.approx(delivered["reward_conversion"].mean())
    assert model.heads["net_revenue"].metrics["label_mean"] == pytest.approx(frame["reward_net_revenue"].mean())


def test_head_scales(model, frame):
    for name in ("open", "conversion", "redemption"):
        assert model.heads[name].is_probability and model.heads[name].scale == 1.0
    head = model.heads["net_revenue"]
    assert not head.is_probability
    assert head.scale == pytest.approx(float(np.std(head.raw(SPEC.matrix(frame, frame)))), rel=1e-6)
    raw = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(model.heads["open"].link(raw), 1 / (1 + np.exp(-raw)))
    np.testing.assert_array_equal(head.link(raw), raw)


def test_no_coupon_rows_means_no_redemption_head():
    frame = synthetic_frame(1500, seed=2, coupons=False)
    model = fit(frame, SPEC, FAST)
    assert "redemption" not in model.heads
    assert model.trained_on["redemption"] == 0
    assert {"open", "conversion", "net_revenue"} <= set(model.heads)
    assert not model.has("redemption") and model.has("open")


def test_heads_without_enough_data_are_left_out():
    frame = synthetic_frame(400, seed=3)
    assert fit(frame, SPEC, TrainConfig(min_rows=401, max_rounds=20)).heads == {}
    no_conversions = frame.assign(reward_conversion=0.0, reward_net_revenue=7.0)
    model = fit(no_conversions, SPEC, FAST)
    assert "conversion" not in model.heads          # no positive labels
    assert "net_revenue" not in model.heads         # a constant label teaches nothing
    assert "open" in model.heads
    # too few positives among enough rows
    few = frame.assign(reward_conversion=(np.arange(len(frame)) < 5).astype(float))
    assert "conversion" not in fit(few, SPEC, FAST, heads=("conversion",)).heads
    # rows without a delivered push do not count for push heads
    undelivered = frame.assign(pushes_delivered=np.where(np.arange(len(frame)) < 380, 0.0, 1.0))
    model = fit(undelivered, SPEC, FAST, heads=("open", "net_revenue"))
    assert model.trained_on == {"open": 20, "net_revenue": 400}
    assert set(model.heads) == {"net_revenue"}


def test_fit_on_an_empty_frame_trains_nothing(frame):
    model = fit(frame.iloc[:0], SPEC, FAST)
    assert model.heads == {} and set(model.trained_on.values()) == {0}


def test_fit_is_deterministic():
    frame = synthetic_frame(800, seed=4)
    a, b = fit(frame, SPEC, FAST, heads=("conversion",)), fit(frame, SPEC, FAST, heads=("conversion",))
    x = SPEC.matrix(frame, frame)
    np.testing.assert_array_equal(a.heads["conversion"].raw(x), b.heads["conversion"].raw(x))


# --- additivity -----------------------------------------------------------------------------------------------


def _paths(node: dict, above: frozenset[int] = frozenset()):
    """The set of features on every root-to-leaf path of a tree."""
    if "split_feature" not in node:
        yield above
        return
    here = above | {node["split_feature"]}
    yield from _paths(node["left_child"], here)
    yield from _paths(node["right_child"], here)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_every_path_combines_the_context_with_one_action_dimension(model, head):
    """LightGBM's interaction constraints hold per root-to-leaf path; a leaf's value then depends on the context
    and one dimension, so the tree (a sum over its leaves) is a sum of one-dimension terms: additive."""
    spec = model.spec
    dimension_of = {spec.columns.index(c): d for d, cs in ACTION_FEATURES.items() for c in cs}
    dump = model.heads[head].booster.dump_model()
    used_dims: set[str] = set()
    for tree in dump["tree_info"]:
        for path in _paths(tree["tree_structure"]):
            dims = {dimension_of[f] for f in path if f in dimension_of}
            assert len(dims) <= 1, f"a path of a {head} tree mixes {dims}"
            used_dims |= dims
    # the test would prove nothing if the trees ignored the actions
    assert len(used_dims) >= (3 if head in ("open", "net_revenue") else 1), used_dims


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("campaign_id", [COUPON_CAMPAIGN, "mlb-desconto-moda", "mlb-lembrete-navegacao"])
def test_factored_scores_equal_the_boosters_raw_prediction(model, head, campaign_id):
    """score(x, a) = base(x) + sum_d delta_d(x, a_d) holds exactly for any user and joint action."""
    c = load_catalog().get(campaign_id)
    options = Options.of_campaign(c)
    rng = np.random.default_rng(5)
    n = 300
    context = synthetic_context(n, seed=6).drop(columns="value_proposition")
    context.loc[::7, "avg_order_value"] = np.nan          # the reference order value path
    scores = Scores.compute(model, head, context, options, chunk=64)
    for _ in range(3):
        idx = {d: rng.integers(0, size, n) for d, size in zip(DIMENSIONS, options.sizes)}
        x = model.spec.matrix(context.assign(value_proposition=c.value_proposition), options.actions(idx))
        direct = model.heads[head].raw(x)
        np.testing.assert_allclose(scores.raw(idx), direct, rtol=0, atol=1e-9)
        np.testing.assert_allclose(scores.value(idx), model.heads[head].link(direct), rtol=0, atol=1e-9)
    # the BAU plan is the base and its own deltas are zero
    np.testing.assert_array_equal(scores.raw(options.reference(n)), scores.base)
    for k, d in enumerate(DIMENSIONS):
        assert scores.deltas[d].shape == (n, options.sizes[k])
        np.testing.assert_array_equal(scores.deltas[d][:, options.bau[k]], 0.0)


def test_factored_scores_vary_along_the_action_dimensions(model):
    options = Options.of_campaign(campaign(COUPON_CAMPAIGN))
    scores = Scores.compute(model, "open", synthetic_context(200, seed=7), options)
    for d in ("template", "hour", "weekday"):
        assert np.abs(scores.deltas[d]).max() > 0.05, d
    assert scores.scale == 1.0 and scores.is_probability and scores.head == "open"


def test_scores_of_some_dimensions_only(model):
    options = Options.of_campaign(campaign(COUPON_CAMPAIGN))
    context = synthetic_context(50, seed=8)
    full = Scores.compute(model, "redemption", context, options)
    coupon_only = Scores.compute(model, "redemption", context, options, dims=("coupon",))
    np.testing.assert_array_equal(coupon_only.deltas["coupon"], full.deltas["coupon"])
    np.testing.assert_array_equal(coupon_only.base, full.base)
    for d in ("template", "hour", "weekday", "frequency"):
        assert not coupon_only.deltas[d].any()


def test_scores_do_not_depend_on_the_chunk_size(model):
    options = Options.of_campaign(campaign(COUPON_CAMPAIGN))
    context = synthetic_context(101, seed=9)
    a = Scores.compute(model, "conversion", context, options)
    b = Scores.compute(model, "conversion", context, options, chunk=10)
    np.testing.assert_array_equal(a.base, b.base)
    for d in DIMENSIONS:
        np.testing.assert_array_equal(a.deltas[d], b.deltas[d])
    sub = a.subset(np.array([3, 50, 100]))
    np.testing.assert_array_equal(sub.base, a.base[[3, 50, 100]])
    np.testing.assert_array_equal(sub.deltas["hour"], a.deltas["hour"][[3, 50, 100]])


# --- predictions and persistence ------------------------------------------------------------------------------


def test_predict_gives_every_head_in_natural_units(model):
    frame = synthetic_frame(200, seed=10)
    frame.index = np.arange(1000, 1200)
    out = model.predict(frame, frame)
    assert list(out.columns) == list(model.heads)
    assert out.index.equals(frame.index)
    for name in ("open", "conversion", "redemption"):
        assert out[name].between(0, 1, inclusive="neither").all()
    x = SPEC.matrix(frame, frame)
    np.testing.assert_array_equal(out["net_revenue"], model.heads["net_revenue"].raw(x))


def test_the_open_head_learns_the_users_habits(model):
    held_out = synthetic_frame(2000, seed=11)
    predicted = model.predict(held_out, held_out)["open"]
    assert np.corrcoef(predicted, held_out["p_open"])[0, 1] > 0.5


def test_save_and_load_give_identical_predictions(model, tmp_path):
    model.country = "MLB"
    path = model.save(tmp_path / "reward_model")
    assert sorted(p.name for p in path.iterdir()) == sorted([f"{h}.txt" for h in model.heads] + ["model.json"])
    meta = json.loads((path / "model.json").read_text())
    assert meta["country"] == "MLB" and set(meta["heads"]) == set(model.heads)
    loaded = RewardModel.load(path)
    assert loaded.spec == model.spec and loaded.country == "MLB" and loaded.trained_on == model.trained_on
    for name, head in model.heads.items():
        other = loaded.heads[name]
        assert (other.objective, other.scale, other.metrics) == (head.objective, head.scale, head.metrics)
    frame = synthetic_frame(300, seed=12)
    again = loaded.predict(frame, frame)
    assert set(again.columns) == set(model.heads)
    pd.testing.assert_frame_equal(again[list(model.heads)], model.predict(frame, frame), check_exact=True)
    options = Options.of_campaign(campaign(COUPON_CAMPAIGN))
    a, b = (Scores.compute(m, "conversion", frame, options) for m in (model, loaded))
    np.testing.assert_array_equal(a.base, b.base)


# --- the user-hash fold ---------------------------------------------------------------------------------------


def test_user_fold_is_deterministic_and_about_share():
    users = np.arange(2_000_000_000, 2_000_040_000)
    fold = user_fold(users, 0.2, 7)
    np.testing.assert_array_equal(fold, user_fold(users, 0.2, 7))
    assert abs(fold.mean() - 0.2) < 0.01
    assert abs(user_fold(users, 0.5, 7).mean() - 0.5) < 0.01
    assert not user_fold(users, 0.0, 7).any() and user_fold(users, 1.0, 7).all()
    # per user: order, duplicates and the other users do not matter
    perm = np.random.default_rng(0).permutation(len(users))[:5000]
    np.testing.assert_array_equal(user_fold(users[perm], 0.2, 7), fold[perm])
    np.testing.assert_array_equal(user_fold(np.repeat(users[:10], 3), 0.2, 7), np.repeat(fold[:10], 3))
    # nested: a larger share keeps every user of a smaller one; another seed is another split
    assert (user_fold(users, 0.3, 7) >= fold).all()
    other = user_fold(users, 0.2, 8)
    assert abs(other.mean() - 0.2) < 0.01 and (other != fold).any()


def test_lightgbm_threads_come_from_the_environment(monkeypatch):
    from pushgrowth.bandit.model import THREADS_ENV, lightgbm_threads

    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert lightgbm_threads() == 2
    monkeypatch.setenv(THREADS_ENV, "1")
    assert lightgbm_threads() == 1
    monkeypatch.setenv(THREADS_ENV, "zero")
    with pytest.raises(ValueError, match=THREADS_ENV):
        lightgbm_threads()
