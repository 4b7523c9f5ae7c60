"""The oracle's view of decisions: chosen and BAU values for all, the best plan searched on a stable sample."""

import itertools

import numpy as np
import pandas as pd
import pytest

from pushgrowth.bandit.features import DIMENSIONS
from pushgrowth.bandit.policy import Options
from pushgrowth.campaigns import load_catalog
from pushgrowth.evaluation.oracle import METRIC, _indices, oracle_values
from pushgrowth.sim import World, WorldConfig

COUNTRY = "MLA"


@pytest.fixture(scope="module")
def setting():
    world = World(WorldConfig.build((COUNTRY,), users=400, seed=11))
    users = world.step()[COUNTRY]["users"].column("user_id").to_numpy()
    catalog = load_catalog()
    campaigns = [c for c in catalog.campaigns if c.country == COUNTRY]
    picks = {o: next(c for c in campaigns if c.objective == o) for o in ("open", "conversion", "net_revenue")}
    rng = np.random.default_rng(5)
    rows = []
    for i, user in enumerate(rng.choice(users, size=60, replace=False)):
        campaign = list(picks.values())[i % 3]
        options = Options.of_campaign(campaign)
        idx = {d: np.array([rng.integers(size)]) for d, size in zip(DIMENSIONS, options.sizes, strict=True)}
        action = options.actions(idx).iloc[0]
        rows.append({"trace_id": f"t{i}", "country": COUNTRY, "date": world.today, "user_id": int(user),
                     "campaign_id": campaign.id, "group": ("holdout", "bau", "bandit")[i % 3] if i >= 3 else "bandit",
                     "objective": campaign.objective, "coupon_value": action.coupon_value,
                     "template_id": action.template_id, "send_hour": action.send_hour,
                     "send_weekday": action.send_weekday,
                     "frequency": np.nan if i % 3 == 0 and i >= 3 else action.frequency})
    return world, catalog, pd.DataFrame(rows)


def test_best_is_searched_on_a_stable_sample_of_the_planned_decisions(setting):
    world, catalog, decisions = setting
    full = oracle_values(world, COUNTRY, decisions, catalog, search_sample=None)
    sampled = oracle_values(world, COUNTRY, decisions, catalog, search_sample=10)
    planned = full["group"] != "holdout"
    assert full.loc[planned, "best"].notna().all()
    assert (full.loc[planned, "best"] >= full.loc[planned, "value"] - 1e-12).all()
    assert (full.loc[~planned, "value"] == 0).all()
    merged = full.merge(sampled, on="trace_id", suffixes=("", "_s"))
    searched = merged["best_s"].notna()
    assert searched.sum() == 10
    np.testing.assert_allclose(merged.loc[searched, "best_s"], merged.loc[searched, "best"])
    np.testing.assert_allclose(merged["value_s"], merged["value"])  # every decision keeps its value
    again = oracle_values(world, COUNTRY, decisions, catalog, search_sample=10)
    assert set(again.loc[again["best"].notna(), "trace_id"]) == set(merged.loc[searched, "trace_id"])


def test_the_coordinate_search_finds_the_best_joint_plan(setting):
    """Against brute force over every joint plan of a few decisions (thousands of plans each)."""
    world, catalog, decisions = setting
    few = decisions[decisions["group"] != "holdout"].head(6)
    found = oracle_values(world, COUNTRY, few, catalog, search_sample=None).set_index("trace_id")
    for _, row in few.iterrows():
        campaign = catalog.get(row["campaign_id"])
        options = Options.of_campaign(campaign)
        grid = np.array(list(itertools.product(*(range(s) for s in options.sizes))))
        actions = options.actions({d: grid[:, k] for k, d in enumerate(DIMENSIONS)})
        out = world.oracle(COUNTRY, np.full(len(grid), row["user_id"]), actions,
                           cost_share=campaign.coupon.cost_share)
        brute = out[METRIC[row["objective"]]].max()
        best = found.loc[row["trace_id"], "best"]
        assert best <= brute + 1e-9
        assert best >= brute - 0.01 * abs(brute) - 1e-9, (row["objective"], best, brute)


def _outbox(world, decisions: pd.DataFrame, catalog, weekday: int | None = None) -> pd.DataFrame:
    """The outbox rows of decisions' plans (their own trace ids), on another weekday if given."""
    from pushgrowth.plans import expand_plans

    plans = []
    for _, row in decisions.iterrows():
        campaign = catalog.get(row["campaign_id"])
        options = Options.of_campaign(campaign)
        action = options.actions(_indices(pd.DataFrame([row]), options)).iloc[0].to_dict()
        action["send_weekday"] = action["send_weekday"] if weekday is None else weekday
        plans.append({**action, "user_id": int(row["user_id"]), "country": COUNTRY, "campaign_id": row["campaign_id"],
                      "trace_id": row["trace_id"], "coupon_code": "CODE" if action["coupon_value"] > 0 else None,
                      "send_hour_local": int(action["send_hour"])})
    return expand_plans(pd.DataFrame(plans), world.today)


def test_a_decision_is_valued_against_the_pushes_other_plans_have_queued(setting):
    """Its own queued pushes are the plan being valued; another plan's queued pushes tire the user."""
    _, catalog, decisions = setting
    world = World(WorldConfig.build((COUNTRY,), users=400, seed=11))
    world.step()
    pop = world.population(COUNTRY)
    today = world.today.weekday()
    planned = decisions[(decisions["group"] != "holdout") & decisions["frequency"].notna()]
    planned = planned[(planned["send_weekday"].astype(int) - today) % 7 >= 3].head(12)  # late in the week
    planned = planned.assign(user_id=pop.user_id[pop.push_opt_in][: len(planned)], frequency=1.0)
    assert len(planned) >= 6
    before = oracle_values(world, COUNTRY, planned, catalog, search_sample=None).set_index("trace_id")
    world.deliver(_outbox(world, planned, catalog))
    own = oracle_values(world, COUNTRY, planned, catalog, search_sample=None).set_index("trace_id")
    pd.testing.assert_frame_equal(own, before)
    for shift in (0, 1, 2):  # three other plans push the same users in the days before theirs
        other = planned.assign(trace_id=[f"other{shift}-{t}" for t in planned["trace_id"]])
        world.deliver(_outbox(world, other, catalog, weekday=(today + shift) % 7))
    tired = oracle_values(world, COUNTRY, planned, catalog, search_sample=None).set_index("trace_id")
    assert (tired["open_rate"] <= own["open_rate"] + 1e-12).all()
    assert tired["open_rate"].mean() < 0.9 * own["open_rate"].mean()
    opens = planned.set_index("trace_id")["objective"] == "open"
    assert (tired.loc[opens[opens].index, "value"] < own.loc[opens[opens].index, "value"]).all()
