"""Holdout / BAU / bandit by a stable hash of (user, campaign, salt)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pushgrowth.allocation.groups import assign_groups, unit_hash

USER_IDS = st.lists(st.integers(min_value=0, max_value=2**62), min_size=1, max_size=300)
CAMPAIGN = st.from_regex(r"[a-z]{2,8}(-[a-z0-9]{1,6}){0,3}", fullmatch=True)
SALT = st.text(min_size=0, max_size=12)


@st.composite
def shares(draw) -> tuple[float, float]:
    """(holdout, bau) with holdout + bau <= 1."""
    holdout = draw(st.floats(0, 1))
    bau = draw(st.floats(0, 1 - holdout))
    return holdout, bau


@settings(max_examples=150, deadline=None)
@given(users=USER_IDS, campaign=CAMPAIGN, salt=SALT, split=shares(), seed=st.integers(0, 2**32 - 1))
def test_groups_are_a_pure_function_of_user_campaign_and_salt(users, campaign, salt, split, seed):
    """Same output for the same (user, campaign, salt), whatever the order of the users and the batch they
    come in."""
    ids = np.asarray(users, dtype=np.int64)
    holdout, bau = split
    once = assign_groups(ids, campaign, holdout, bau, salt)
    np.testing.assert_array_equal(once, assign_groups(ids.copy(), campaign, holdout, bau, salt))
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(ids))
    np.testing.assert_array_equal(assign_groups(ids[perm], campaign, holdout, bau, salt), once[perm])
    cut = int(rng.integers(0, len(ids) + 1))
    parts = np.concatenate([assign_groups(ids[:cut], campaign, holdout, bau, salt),
                            assign_groups(ids[cut:], campaign, holdout, bau, salt)])
    np.testing.assert_array_equal(parts, once)
    singles = np.array([assign_groups(ids[i:i + 1], campaign, holdout, bau, salt)[0] for i in range(len(ids))])
    np.testing.assert_array_equal(singles, once)


@settings(max_examples=100, deadline=None)
@given(users=USER_IDS, key=CAMPAIGN, salt=SALT)
def test_unit_hash_is_a_point_in_the_unit_interval(users, key, salt):
    u = unit_hash(np.asarray(users, dtype=np.int64), key, salt)
    assert u.dtype == np.float64 and u.shape == (len(users),)
    assert ((u >= 0) & (u < 1)).all()


def test_unit_hash_of_known_values_never_changes():
    """Groups must stay put across releases: a change of the hash would silently reshuffle every experiment."""
    ids = np.array([0, 1, 2_000_000_000, 2_000_000_123, 2**40 + 7], dtype=np.int64)
    first = unit_hash(ids, "mlb-carrinho-abandonado", "pushgrowth")
    np.testing.assert_allclose(first, [0.6114160053716033, 0.3135738106370979, 0.9251066093391068,
                                       0.44989121183577996, 0.81319141338573], rtol=0, atol=1e-15)
    assert assign_groups(ids, "mlb-carrinho-abandonado", 0.1, 0.45).tolist() == [
        "bandit", "bau", "bandit", "bau", "bandit"]
    # a different key or salt moves (almost) everyone
    assert (first != unit_hash(ids, "mlb-carrinho-abandonado", "other")).all()
    assert (first != unit_hash(ids, "mlb-desconto-moda", "pushgrowth")).all()


LARGE = np.arange(2_000_000_000, 2_000_000_000 + 200_000, dtype=np.int64)


@pytest.mark.parametrize("holdout,bau,bandit", [
    (0.1, 0.45, 0.45), (0.1, 0.8, 0.1), (0.05, 0.0, 0.95), (0.2, 0.7, 0.1), (0.5, 0.5, 0.0), (0.0, 0.0, 1.0),
    (1.0, 0.0, 0.0), (0.0, 1.0, 0.0),
])
@pytest.mark.parametrize("campaign,salt", [("mlb-carrinho-abandonado", "pushgrowth"), ("mla-x", "s2")])
def test_shares_match_the_catalog_over_many_users(holdout, bau, bandit, campaign, salt):
    g = assign_groups(LARGE, campaign, holdout, bau, salt)
    n = len(g)
    for name, share in (("holdout", holdout), ("bau", bau), ("bandit", bandit)):
        observed = float((g == name).mean())
        se = np.sqrt(share * (1 - share) / n)
        assert abs(observed - share) <= 5 * se + 1e-12, (name, observed, share)


def test_shares_hold_on_consecutive_and_scattered_ids():
    rng = np.random.default_rng(0)
    scattered = rng.integers(0, 2**62, 200_000)
    for ids in (np.arange(200_000), scattered, scattered * 2):  # even ids only: no parity artefact
        g = assign_groups(ids, "mlm-test", 0.1, 0.45)
        assert abs((g == "holdout").mean() - 0.1) < 5 * np.sqrt(0.09 / len(ids))
        assert abs((g == "bau").mean() - 0.45) < 5 * np.sqrt(0.2475 / len(ids))


def test_campaigns_hash_independently():
    """A user's point for one campaign says nothing about its point for another (or under another salt)."""
    a = unit_hash(LARGE, "mlb-a")
    b = unit_hash(LARGE, "mlb-b")
    c = unit_hash(LARGE, "mlb-a", "other-salt")
    for x, y in ((a, b), (a, c)):
        assert abs(np.corrcoef(x, y)[0, 1]) < 5 / np.sqrt(len(LARGE))
        both = float(((x < 0.1) & (y < 0.1)).mean())
        assert abs(both - 0.01) < 5 * np.sqrt(0.01 * 0.99 / len(LARGE))
    # the pick hash allocation uses ("pick|<campaign>", no salt) is independent of the group hash too
    pick = unit_hash(LARGE, "pick|mlb-a")
    assert abs(np.corrcoef(a, pick)[0, 1]) < 5 / np.sqrt(len(LARGE))


@settings(max_examples=150, deadline=None)
@given(users=USER_IDS, campaign=CAMPAIGN, salt=SALT, holdout=st.floats(0, 1),
       bandit=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_growing_the_bandit_only_moves_bau_users_into_it(users, campaign, salt, holdout, bandit):
    ids = np.asarray(users, dtype=np.int64)
    small, large = sorted(x * (1 - holdout) for x in bandit)
    before = assign_groups(ids, campaign, holdout, max(0.0, 1 - holdout - small), salt)
    after = assign_groups(ids, campaign, holdout, max(0.0, 1 - holdout - large), salt)
    np.testing.assert_array_equal(before == "holdout", after == "holdout")   # nobody enters or leaves holdout
    assert not ((before == "bandit") & (after != "bandit")).any()            # nobody leaves the bandit
    assert not ((before == "bau") & (after == "holdout")).any()
    assert not ((before != "bau") & (after == "bau")).any()                  # BAU only shrinks


def test_rollout_from_pilot_to_full_bandit():
    """10% pilot -> 50% -> 90%: the bandit grows monotonically, the holdout is identical at every step."""
    steps = [assign_groups(LARGE, "mlb-rollout", 0.1, 0.9 - b) for b in (0.1, 0.5, 0.9)]
    for before, after in zip(steps, steps[1:]):
        np.testing.assert_array_equal(before == "holdout", after == "holdout")
        assert ((before == "bandit") <= (after == "bandit")).all()
    assert abs((steps[-1] == "bandit").mean() - 0.9) < 0.01
    assert (steps[-1] == "bau").sum() == 0


@pytest.mark.parametrize("holdout,bau", [(-0.1, 0.5), (0.5, -0.01), (0.6, 0.5), (1.2, 0.0), (0.0, 1.5)])
def test_invalid_shares_are_refused_with_the_campaign_named(holdout, bau):
    with pytest.raises(ValueError, match="mlb-bad"):
        assign_groups(np.arange(10), "mlb-bad", holdout, bau)


def test_shares_summing_to_one_with_rounding_are_accepted(catalog):
    for c in catalog.campaigns:
        s = c.shares
        g = assign_groups(np.arange(1000), c.id, s.holdout, s.bau)
        assert set(np.unique(g)) <= {"holdout", "bau", "bandit"}
    # 0.1 + 0.45 + 0.45 is not exactly 1 in floating point; the split must still be complete
    g = assign_groups(LARGE[:10_000], "x", 0.1 + 1e-12, 0.9)
    assert set(np.unique(g)) <= {"holdout", "bau", "bandit"}


def test_empty_input_gives_empty_output():
    assert assign_groups(np.array([], dtype=np.int64), "x", 0.1, 0.45).shape == (0,)
    assert unit_hash(np.array([], dtype=np.int64), "x").shape == (0,)
