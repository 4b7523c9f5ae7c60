"""The feature spec: fixed vocabularies, the user x action crosses, coupon discounts and the interaction sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pushgrowth.bandit.features import (
    ACTION_COLUMNS,
    ACTION_FEATURES,
    CATEGORICAL_FEATURES,
    CONTEXT_CATEGORICAL,
    CONTEXT_NUMERIC,
    DIMENSIONS,
    VOCABULARIES,
    WEEKEND_SHARE,
    FeatureError,
    FeatureSpec,
    expected_discount,
    hour_affinity,
    hour_gap,
    weekday_affinity,
)
from pushgrowth.domain import CATEGORIES, LIFECYCLE_SEGMENTS, PLATFORMS, TONES, VALUE_PROPOSITIONS
from pushgrowth.sim import response as R

SHARES = {"morning": 0.11, "midday": 0.22, "afternoon": 0.33, "evening": 0.27, "night": 0.07}


def context_frame(n: int = 4, seed: int = 0, **overrides) -> pd.DataFrame:
    """A user_features-like frame with every context column the spec needs."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.uniform(0, 10, n) for c in CONTEXT_NUMERIC})
    frame["mp_user"] = rng.random(n) < 0.5
    frame["avg_order_value"] = rng.uniform(50, 300, n)
    frame["segment"] = rng.choice(LIFECYCLE_SEGMENTS, n)
    frame["platform"] = rng.choice(PLATFORMS, n)
    frame["category_interest"] = rng.choice(CATEGORIES, n)
    frame["value_proposition"] = rng.choice(VALUE_PROPOSITIONS, n)
    for part, share in SHARES.items():
        frame[f"share_sessions_{part}"] = share
    frame["usual_active_hour"] = np.nan  # no CRM summary: the crosses fall back to the 28-day session statistics
    frame["weekend_activity_share"] = np.nan
    for column, values in overrides.items():
        frame[column] = values
    return frame


def action_frame(n: int = 4, **overrides) -> pd.DataFrame:
    frame = pd.DataFrame({"coupon_kind": ["amount"] * n, "coupon_value": [10.0] * n, "coupon_cap": [0.0] * n,
                          "tone": ["benefit"] * n, "send_hour": [20] * n, "send_weekday": [2] * n,
                          "frequency": [1] * n})
    for column, values in overrides.items():
        frame[column] = values
    return frame


# --- vocabularies ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("column", sorted(VOCABULARIES))
def test_vocabulary_codes_are_the_positions_in_the_domain_tuples(column):
    spec = FeatureSpec()
    vocabulary = VOCABULARIES[column]
    # every value alone, in reverse order and mixed: the code never depends on what else is in the frame
    for value in vocabulary:
        assert spec._encode(column, pd.Series([value])).tolist() == [vocabulary.index(value)]
    reverse = list(reversed(vocabulary))
    assert spec._encode(column, pd.Series(reverse)).tolist() == [vocabulary.index(v) for v in reverse]


@pytest.mark.parametrize("column", sorted(VOCABULARIES))
def test_unknown_and_missing_categories_are_nan(column):
    spec = FeatureSpec()
    first = VOCABULARIES[column][0]
    codes = spec._encode(column, pd.Series([first, "no-such-value", None, np.nan, first.upper()], dtype=object))
    assert codes[0] == 0
    assert np.isnan(codes[1:]).all()


def test_vocabularies_are_the_shared_domain_names():
    assert VOCABULARIES == {"segment": LIFECYCLE_SEGMENTS, "platform": PLATFORMS, "category_interest": CATEGORIES,
                            "value_proposition": VALUE_PROPOSITIONS, "tone": TONES}


def test_encode_context_puts_codes_in_the_spec_column_order():
    spec = FeatureSpec()
    ctx = context_frame(3, platform=["web", "android", "tablet"], segment=["churned", "new", "active"],
                        category_interest=["books", "electronics", None],
                        value_proposition=["loyalty", "free_shipping", "mp_cashback"])
    x = spec.encode_context(ctx)
    assert x.dtype == np.float32 and x.shape == (3, len(spec.context))
    col = {c: j for j, c in enumerate(spec.context)}
    np.testing.assert_array_equal(x[:, col["platform"]], [2, 0, np.nan])
    np.testing.assert_array_equal(x[:, col["segment"]], [4, 0, 1])
    np.testing.assert_array_equal(x[:, col["category_interest"]], [9, 0, np.nan])
    np.testing.assert_array_equal(x[:, col["value_proposition"]], [6, 0, 2])
    np.testing.assert_allclose(x[:, col["lifetime_gmv"]], ctx["lifetime_gmv"].to_numpy(np.float32))


def test_booleans_become_zero_one_and_nulls_stay_nan():
    spec = FeatureSpec()
    col = spec.context.index("mp_user")
    plain = spec.encode_context(context_frame(2, mp_user=[True, False]))
    np.testing.assert_array_equal(plain[:, col], [1.0, 0.0])
    nullable = spec.encode_context(context_frame(3, mp_user=pd.array([True, None, False], dtype="boolean")))
    np.testing.assert_array_equal(nullable[:, col], [1.0, np.nan, 0.0])
    texts = spec.encode_context(context_frame(2, lifetime_orders=["3", "n/a"]))
    np.testing.assert_array_equal(texts[:, spec.context.index("lifetime_orders")], [3.0, np.nan])


def test_spec_round_trips_through_a_dict():
    spec = FeatureSpec(context=("lifetime_orders", "platform"), reference_order_value=123.5,
                       vocabularies={"platform": ("ios", "android")})
    again = FeatureSpec.from_dict(spec.to_dict())
    assert again == spec
    assert again.vocabularies["platform"] == ("ios", "android")
    ctx = pd.DataFrame({"lifetime_orders": [1, 2], "platform": ["android", "web"]})
    np.testing.assert_array_equal(again.encode_context(ctx), [[1, 1], [2, np.nan]])


# --- columns and interaction constraints ----------------------------------------------------------------------


def test_columns_are_context_then_action_features_by_dimension():
    spec = FeatureSpec()
    assert spec.context == CONTEXT_NUMERIC + CONTEXT_CATEGORICAL
    action = spec.columns[len(spec.context):]
    assert action == tuple(c for d in DIMENSIONS for c in ACTION_FEATURES[d])
    assert action[:3] == ("coupon_discount", "coupon_ratio", "tone") and action[-1] == "frequency"
    dimension = {c: d for d, cs in ACTION_FEATURES.items() for c in cs}
    assert dimension["send_hour"] == dimension["hour_affinity"] == dimension["hour_gap"] == "hour"
    assert dimension["send_weekday"] == dimension["weekday_affinity"] == "weekday"
    assert len(set(spec.columns)) == len(spec.columns)
    assert [spec.columns[i] for i in spec.categorical] == [c for c in spec.columns if c in CATEGORICAL_FEATURES]
    assert {spec.columns[i] for i in spec.categorical} == set(CATEGORICAL_FEATURES)


def test_interaction_constraints_have_one_set_per_dimension():
    spec = FeatureSpec()
    sets = spec.interaction_constraints()
    n_context = len(spec.context)
    context = set(range(n_context))
    assert len(sets) == len(DIMENSIONS)
    seen: set[int] = set()
    for dim, indices in zip(DIMENSIONS, sets):
        assert len(indices) == len(set(indices))
        assert context <= set(indices)                                 # all of the context ...
        action = {spec.columns[i] for i in indices if i >= n_context}
        assert action == set(ACTION_FEATURES[dim])                     # ... and only this dimension's features
        seen |= set(indices) - context
    assert seen == set(range(n_context, len(spec.columns)))            # every action feature is in exactly one
    assert sum(len(s) - n_context for s in sets) == len(spec.columns) - n_context


def test_interaction_constraints_follow_a_custom_context():
    spec = FeatureSpec(context=("lifetime_orders", "platform"))
    sets = spec.interaction_constraints()
    assert sets[0] == [0, 1, 2, 3]             # coupon_discount, coupon_ratio
    assert sets[1] == [0, 1, 4]                # tone
    assert sets[2] == [0, 1] + [spec.columns.index(c) for c in ACTION_FEATURES["hour"]]
    assert sets[-1] == [0, 1, len(spec.columns) - 1]


# --- crosses of the action with the user's habits --------------------------------------------------------------

PART_OF_HOUR = {h: "night" for h in range(24)}
PART_OF_HOUR.update({h: "morning" for h in range(6, 11)})
PART_OF_HOUR.update({h: "midday" for h in range(11, 15)})
PART_OF_HOUR.update({h: "afternoon" for h in range(15, 19)})
PART_OF_HOUR.update({h: "evening" for h in range(19, 23)})


@pytest.mark.parametrize("hour", range(24))
def test_hour_affinity_is_the_share_of_the_part_of_day(hour):
    ctx = context_frame(2)
    out = hour_affinity(ctx, np.full(2, hour))
    np.testing.assert_array_equal(out, [SHARES[PART_OF_HOUR[hour]]] * 2)


def test_hour_affinity_examples_and_vectorization():
    ctx = context_frame(3, share_sessions_evening=[0.5, 0.6, 0.7], share_sessions_night=[0.01, 0.02, 0.03])
    np.testing.assert_array_equal(hour_affinity(ctx, np.array([20, 3, 20])), [0.5, 0.02, 0.7])
    np.testing.assert_array_equal(hour_affinity(ctx.drop(columns="share_sessions_evening"), np.array([20, 3, 19])),
                                  [np.nan, 0.02, np.nan])


def test_hour_gap_is_the_circular_distance_to_the_mean_session_hour():
    ctx = context_frame(6, session_hour_mean=[23.0, 20.0, 8.5, 0.0, np.nan, 12.0])
    out = hour_gap(ctx, np.array([1, 8, 8, 23, 12, 12]))
    np.testing.assert_allclose(out[[0, 1, 2, 3, 5]], [2.0, 12.0, 0.5, 1.0, 0.0])
    assert np.isnan(out[4])
    assert np.isnan(hour_gap(ctx.drop(columns="session_hour_mean"), np.full(6, 9))).all()


def test_hour_gap_prefers_the_crm_usual_active_hour():
    ctx = context_frame(3, usual_active_hour=[20.0, np.nan, 3.0], session_hour_mean=[10.0, 10.0, np.nan])
    np.testing.assert_allclose(hour_gap(ctx, np.array([21, 13, 23])), [1.0, 3.0, 4.0])


def test_weekday_affinity_prefers_the_crm_weekend_share():
    ctx = context_frame(2, weekend_activity_share=[4 / 7, np.nan], share_sessions_weekend=[0.0, 4 / 7])
    np.testing.assert_allclose(weekday_affinity(ctx, np.array([6, 6])), [2.0, 2.0])


def test_weekday_affinity_is_one_for_an_even_spread():
    ctx = context_frame(7, share_sessions_weekend=[WEEKEND_SHARE] * 7)
    np.testing.assert_allclose(weekday_affinity(ctx, np.arange(7)), np.ones(7), rtol=1e-12)


def test_weekday_affinity_of_weekend_and_weekday_users():
    ctx = context_frame(3, share_sessions_weekend=[4 / 7, 0.0, 1.0])
    weekend = weekday_affinity(ctx, np.array([5, 6, 6]))
    weekday = weekday_affinity(ctx, np.array([0, 4, 3]))
    np.testing.assert_allclose(weekend, [2.0, 0.0, 3.5])
    np.testing.assert_allclose(weekday, [0.6, 1.4, 0.0])
    missing = weekday_affinity(ctx.drop(columns="share_sessions_weekend"), np.array([0, 5, 6]))
    assert np.isnan(missing).all()


# --- coupons --------------------------------------------------------------------------------------------------


def test_expected_discount_of_each_kind():
    kind = np.array(["amount", "amount", "amount", "percent", "percent", "percent", "none", "none"])
    value = np.array([50.0, 95.0, 200.0, 20.0, 20.0, 20.0, 30.0, 0.0])
    cap = np.array([0.0, 0.0, 0.0, 0.0, 60.0, 500.0, 0.0, 0.0])
    order = np.array([100.0, 100.0, 100.0, 1000.0, 1000.0, 1000.0, 100.0, 100.0])
    np.testing.assert_allclose(expected_discount(kind, value, cap, order),
                               [50.0, 90.0, 90.0, 200.0, 60.0, 200.0, 0.0, 0.0])


def test_expected_discount_broadcasts_scalars():
    out = expected_discount(np.array(["percent"] * 3), np.array([10.0, 10.0, 10.0]), 15.0,
                            np.array([100.0, 150.0, 300.0]))
    np.testing.assert_allclose(out, [10.0, 15.0, 15.0])


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(["none", "amount", "percent"]), st.floats(0, 500), st.floats(0, 300),
                          st.floats(1, 5000)), min_size=1, max_size=20))
def test_expected_discount_is_the_worlds_discount(rows):
    """The marketplace's rule and the World's (which codes kinds as 0/1/2) agree on every coupon."""
    kind, value, cap, order = (np.array(c) for c in zip(*rows))
    codes = np.array([("none", "amount", "percent").index(k) for k in kind])
    ours = expected_discount(kind, value, cap, order)
    np.testing.assert_allclose(ours, R.discount(codes, value, cap, order), rtol=1e-12)
    assert (ours >= 0).all() and (ours <= np.maximum(0.9 * order, value / 100 * order) * (1 + 1e-12)).all()
    assert (ours[kind == "amount"] <= 0.9 * order[kind == "amount"] + 1e-9).all()


def test_order_value_falls_back_to_the_reference():
    spec = FeatureSpec(reference_order_value=165.0)
    ctx = pd.DataFrame({"avg_order_value": [80.0, np.nan, 0.0, -3.0, None]})
    np.testing.assert_array_equal(spec.order_value(ctx), [80.0, 165.0, 165.0, 165.0, 165.0])
    np.testing.assert_array_equal(spec.order_value(pd.DataFrame({"x": [1, 2]})), [165.0, 165.0])


def test_action_block_encodes_the_coupon_against_the_users_order_value():
    spec = FeatureSpec(reference_order_value=200.0)
    ctx = context_frame(4, avg_order_value=[100.0, 100.0, np.nan, 1000.0], share_sessions_weekend=[0.5] * 4,
                        session_hour_mean=[21.0, 22.0, np.nan, 9.0])
    actions = action_frame(4, coupon_kind=["amount", "percent", "amount", "none"],
                           coupon_value=[95.0, 20.0, 50.0, np.nan], coupon_cap=[0.0, 15.0, np.nan, 0.0],
                           tone=["urgency", "curiosity", "nope", "benefit"], send_hour=[20, 3, 12, 9],
                           send_weekday=[6, 0, 3, 5], frequency=[1, 2, 3, 1])
    block = spec.encode_actions(actions, ctx)
    names = spec.columns[len(spec.context):]
    got = pd.DataFrame(block, columns=names)
    np.testing.assert_allclose(got["coupon_discount"], [90.0, 15.0, 50.0, 0.0])
    np.testing.assert_allclose(got["coupon_ratio"], [0.9, 0.15, 0.25, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(got["tone"], [0, 4, np.nan, 1])
    np.testing.assert_array_equal(got["send_hour"], [20, 3, 12, 9])
    np.testing.assert_allclose(got["hour_affinity"], [0.27, 0.07, 0.22, 0.11], rtol=1e-6)
    np.testing.assert_array_equal(got["hour_gap"], [1.0, 5.0, np.nan, 0.0])
    np.testing.assert_array_equal(got["send_weekday"], [6, 0, 3, 5])
    np.testing.assert_allclose(got["weekday_affinity"], [1.75, 0.7, 0.7, 1.75], rtol=1e-6)
    np.testing.assert_array_equal(got["frequency"], [1, 2, 3, 1])
    assert block.dtype == np.float32


def test_matrix_stacks_context_and_actions():
    spec = FeatureSpec()
    ctx, actions = context_frame(5), action_frame(5)
    x = spec.matrix(ctx, actions)
    assert x.shape == (5, len(spec.columns)) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, :len(spec.context)], spec.encode_context(ctx))
    np.testing.assert_array_equal(x[:, len(spec.context):], spec.encode_actions(actions, ctx))


# --- errors ---------------------------------------------------------------------------------------------------


def test_missing_context_columns_are_named():
    ctx = context_frame(2).drop(columns=["platform", "sessions_28d"])
    with pytest.raises(FeatureError, match=r"context lacks columns \['sessions_28d', 'platform'\]"):
        FeatureSpec().encode_context(ctx)
    with pytest.raises(ValueError, match="platform"):       # a FeatureError is a ValueError
        FeatureSpec().matrix(ctx, action_frame(2))


def test_missing_action_columns_are_named():
    with pytest.raises(FeatureError, match=r"actions lack columns \['coupon_cap', 'frequency'\]"):
        FeatureSpec().encode_actions(action_frame(2).drop(columns=["frequency", "coupon_cap"]), context_frame(2))
    assert set(ACTION_COLUMNS) == set(action_frame(1).columns)


def test_misaligned_rows_are_refused():
    with pytest.raises(FeatureError, match="3 context rows for 2 action rows"):
        FeatureSpec().matrix(context_frame(3), action_frame(2))


def test_habits_encode_like_the_frame_they_come_from():
    """Scoring reads the send-time columns once (`habits`); the features must equal those read from the frame."""
    import numpy as np
    import pandas as pd

    from pushgrowth.bandit.features import HABIT_COLUMNS, FeatureSpec, habits

    rng = np.random.default_rng(1)
    context = pd.DataFrame({c: rng.uniform(0, 1, 8) for c in HABIT_COLUMNS})
    context["usual_active_hour"] = [3.0, np.nan, 22.5, 12.0, np.nan, 0.0, 7.0, 18.0]
    context["weekend_activity_share"] = pd.array([0.2, None, 0.5, 0.1, 0.3, None, 0.9, 0.4], dtype="Float64")
    spec = FeatureSpec()
    args = (np.full(8, "percent", dtype=object), np.full(8, 10.0), np.full(8, 50.0), np.float64(1), np.float64(20),
            np.float64(6), np.float64(2), np.full(8, 100.0))
    np.testing.assert_array_equal(spec.encode_action_arrays(context, *args),
                                  spec.encode_action_arrays(habits(context), *args))


def test_tone_affinity_is_the_one_step_posterior_of_each_tone_against_the_users_own_rate():
    from pushgrowth.bandit.features import TONE_OPEN_RATE, TONE_SHRINK_PUSHES, tone_affinity
    from pushgrowth.domain import TONES

    context = pd.DataFrame({f"tone_{kind}_{tone}": [0, 0, 0] for tone in TONES for kind in ("pushes", "opens")})
    context.loc[0, ["tone_pushes_urgency", "tone_opens_urgency", "tone_pushes_benefit"]] = [2, 1, 3]
    context.loc[1, ["tone_pushes_curiosity", "tone_opens_curiosity"]] = [2, 5]  # more opens than pushes: capped
    v = 0.3
    out = tone_affinity(context, v)
    p = (1 + TONE_SHRINK_PUSHES * TONE_OPEN_RATE) / (5 + TONE_SHRINK_PUSHES)
    u, b = TONES.index("urgency"), TONES.index("benefit")
    assert out[0, u] == pytest.approx(v * (1 - 2 * p) / (1 + v * p * (1 - p) * 2))
    assert out[0, b] == pytest.approx(v * (0 - 3 * p) / (1 + v * p * (1 - p) * 3))
    assert out[0, u] > 0 > out[0, b]
    others = [i for i in range(len(TONES)) if i not in (u, b)]
    np.testing.assert_array_equal(out[0, others], 0.0)          # never sent: no opinion
    q = (2 + TONE_SHRINK_PUSHES * TONE_OPEN_RATE) / (2 + TONE_SHRINK_PUSHES)
    c = TONES.index("curiosity")
    assert out[1, c] == pytest.approx(v * (2 - 2 * q) / (1 + v * q * (1 - q) * 2))
    np.testing.assert_array_equal(out[2], 0.0)                   # no history
    np.testing.assert_array_equal(tone_affinity(pd.DataFrame(index=range(2)), v), 0.0)  # no columns at all
    np.testing.assert_array_equal(tone_affinity(context, 0.0), 0.0)
    assert np.abs(tone_affinity(context, 1.0)).max() > np.abs(out).max()  # a wider prior trusts the data more
