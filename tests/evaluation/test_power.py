"""The power calculator against a random-effects World whose variances are known, and a Monte Carlo of the
experiment it sizes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pushgrowth.evaluation import stats
from pushgrowth.evaluation.power import group_variance, plan

TAU2, NOISE2 = 1.0, 3.0
"""A user's own level varies with variance TAU2, each decision around it with NOISE2: rho = 1/4, sigma^2 = 4."""


def experiment(users: int, days: int, rng: np.random.Generator, effect: float = 0.0) -> pd.DataFrame:
    """One decision per user and day, each user in one group (half bandit, half BAU) and one of two campaigns
    with different levels."""
    user = np.arange(users)
    group = np.where(user % 2 == 0, "bandit", "bau")
    campaign = np.where(user % 4 < 2, "a", "b")
    level = rng.normal(0.0, math.sqrt(TAU2), users) + np.where(campaign == "a", 5.0, -2.0) \
        + np.where(group == "bandit", effect, 0.0)
    rows = pd.DataFrame({"user_id": np.repeat(user, days), "group": np.repeat(group, days),
                         "campaign_id": np.repeat(campaign, days), "date": np.tile(np.arange(days), users)})
    rows["net_revenue"] = np.repeat(level, days) + rng.normal(0.0, math.sqrt(NOISE2), len(rows))
    return rows


def test_the_variance_and_the_intra_user_correlation_are_recovered():
    found = group_variance(experiment(8_000, 5, np.random.default_rng(1)), "bandit")
    assert found.users == 4_000 and found.decisions == 20_000 and found.days == 5 and found.rate == 1.0
    assert found.sigma2 == pytest.approx(TAU2 + NOISE2, rel=0.05)  # the campaigns' levels are taken out
    assert found.rho == pytest.approx(TAU2 / (TAU2 + NOISE2), abs=0.03)


def test_the_predicted_standard_error_is_the_one_a_longer_experiment_shows():
    """Observed: 4,000 users for 4 days. Planned: 2,000 users for 12 days. The plan's standard error of the
    difference of means must match the spread of that difference over repeated planned experiments."""
    rng = np.random.default_rng(2)
    sized = plan(experiment(4_000, 4, rng), days=[12], users=2_000)
    (row,) = sized.rows
    differences = []
    for _ in range(300):
        rows = experiment(2_000, 12, rng)
        means = rows.groupby("group")["net_revenue"].mean()
        differences.append(means["bandit"] - means["bau"])
    assert row.std_error == pytest.approx(float(np.std(differences, ddof=1)), rel=0.1)
    # closed form: each group 1,000 users x 12 decisions, design effect 1 + 11 rho
    exact = math.sqrt(2 * (TAU2 + NOISE2) * (1 + 11 * TAU2 / (TAU2 + NOISE2)) / (1_000 * 12))
    assert row.std_error == pytest.approx(exact, rel=0.05)


def test_more_days_help_less_than_more_users_when_users_differ_a_lot():
    sized = plan(experiment(4_000, 4, np.random.default_rng(3)), days=[7, 28])
    short, long = sized.rows
    assert long.std_error < short.std_error
    # four times the days buys less than four times the users would (half the standard error)
    assert long.std_error > short.std_error / 2


def test_an_effect_at_the_detectable_size_has_the_target_power_and_needs_the_planned_users():
    observed = experiment(4_000, 4, np.random.default_rng(4))
    mde = plan(observed, days=[14], users=10_000).rows[0].mde
    (row,) = plan(observed, days=[14], users=10_000, effect=mde).rows
    assert row.power == pytest.approx(stats.POWER, abs=1e-9)
    assert row.users_needed == pytest.approx(10_000, abs=1)
    (half,) = plan(observed, days=[14], users=10_000, effect=mde / 2).rows
    assert half.users_needed == pytest.approx(40_000, abs=2)  # half the effect, four times the users
    (none,) = plan(observed, days=[14], users=10_000, effect=-0.1).rows
    assert none.users_needed is None


def test_a_pilot_share_moves_users_between_the_groups():
    observed = experiment(4_000, 4, np.random.default_rng(5))
    even = plan(observed, days=[14]).rows[0]
    pilot = plan(observed, days=[14], bandit_share=0.1)
    assert pilot.shares["bandit"] == pytest.approx(0.1) and pilot.shares["bau"] == pytest.approx(0.9)
    assert pilot.rows[0].std_error > even.std_error  # a lopsided split of the same users is less precise


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"metric": "gmv"}, "unknown metric 'gmv'"),
    ({"days": [0]}, "days must be whole days"),
    ({"bandit_share": 1.0}, "bandit_share must be strictly between 0 and 1"),
    ({"users": 1}, "users must be at least 2"),
])
def test_bad_settings_are_named(kwargs, message):
    observed = experiment(40, 2, np.random.default_rng(6))
    with pytest.raises(ValueError, match=message):
        plan(observed, **{"days": [7], **kwargs})


def test_a_group_without_decisions_is_named():
    observed = experiment(40, 2, np.random.default_rng(7))
    with pytest.raises(ValueError, match="group 'bau' has 0 decisions"):
        plan(observed[observed["group"] != "bau"], days=[7])


def shared_experiment(users: int, days: int, rng: np.random.Generator) -> pd.DataFrame:
    """Two campaigns per user, the group drawn per (user, campaign), and users decided on unevenly: one user in
    three every day, the others every other day."""
    user = np.arange(users)
    level = rng.normal(0.0, math.sqrt(TAU2), users)
    frames = []
    for campaign, shift in (("a", 5.0), ("b", -2.0)):
        group = np.where(rng.random(users) < 0.5, "bandit", "bau")
        for day in range(days):
            on = (user % 3 == 0) | (user % 2 == day % 2)
            frames.append(pd.DataFrame({"user_id": user[on], "group": group[on], "campaign_id": campaign,
                                        "date": day, "net_revenue": level[on] + shift
                                        + rng.normal(0.0, math.sqrt(NOISE2), int(on.sum()))}))
    return pd.concat(frames, ignore_index=True)


def clustered_variance(rows: pd.DataFrame) -> float:
    """The user-clustered variance of the bandit - BAU difference of means per decision, within campaigns."""
    rows = rows.assign(r=rows["net_revenue"] - rows.groupby(["group", "campaign_id"])["net_revenue"]
                       .transform("mean"))
    sums = rows.pivot_table(index="user_id", columns="group", values="r", aggfunc="sum", fill_value=0.0)
    counts = rows["group"].value_counts()
    return float(np.sum((sums["bandit"] / counts["bandit"] - sums["bau"] / counts["bau"]) ** 2))


def test_at_the_observed_size_the_plan_is_the_clustered_variance_of_the_observed_difference():
    observed = shared_experiment(3_000, 6, np.random.default_rng(8))
    sized = plan(observed, days=[6])
    assert sized.overlap.share > 0.4 and sized.overlap.kappa == pytest.approx(0.25, abs=0.05)
    assert sized.treatment.spread > 1.0
    assert sized.rows[0].std_error ** 2 == pytest.approx(clustered_variance(observed), rel=1e-9)


def test_users_in_both_groups_are_sized_by_a_monte_carlo_of_the_longer_experiment():
    """A user's level cancels in the difference when the user is in both groups: the plan must know it, or it
    would overstate the standard error of the longer, smaller experiment."""
    rng = np.random.default_rng(9)
    sized = plan(shared_experiment(3_000, 4, rng), days=[12], users=1_500)
    differences = []
    for _ in range(300):  # the within-campaign difference: per campaign, weighted by its decisions
        rows = shared_experiment(1_500, 12, rng)
        means = rows.pivot_table(index="campaign_id", columns="group", values="net_revenue", aggfunc="mean")
        weights = rows["campaign_id"].value_counts(normalize=True)
        differences.append(float(np.sum(weights * (means["bandit"] - means["bau"]))))
    spread = float(np.std(differences, ddof=1))
    assert sized.rows[0].std_error == pytest.approx(spread, rel=0.12)
