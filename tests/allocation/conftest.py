"""Session fixtures of the allocation tests (builders live in `helpers.py`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pushgrowth.allocation.assign import DayInputs, assign
from pushgrowth.bandit.features import FeatureSpec
from pushgrowth.bandit.model import DEFAULT_PARAMS, TrainConfig, fit
from pushgrowth.bandit.policy import Options, cold_start, schedule_mask
from pushgrowth.bandit.serving import ServingPolicy
from pushgrowth.campaigns import Catalog, load_catalog
from pushgrowth.domain import PLAN_DAYS
from tests.allocation.helpers import COUNTRY, DATE, REPO, Population, day_inputs, load_population


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(REPO / "campaigns")


@pytest.fixture(scope="session")
def population() -> Population:
    return load_population()


@pytest.fixture(scope="session")
def cold_policy(catalog) -> ServingPolicy:
    return ServingPolicy(reference_order_value=catalog.policies[COUNTRY].reference_order_value)


@pytest.fixture(scope="session")
def model_policy(catalog, population) -> ServingPolicy:
    """A model with all four heads, trained on cold-start plans of three campaigns with synthetic rewards in which
    coupons raise conversion (so the bandit wants coupons and pacing has something to price)."""
    reference = catalog.policies[COUNTRY].reference_order_value
    rng = np.random.default_rng(5)
    frames = []
    for cid in ("mlb-carrinho-abandonado", "mlb-desconto-moda", "mlb-volta-clientes-inativos"):
        c = catalog.get(cid)
        sample = population.context.sample(2_500, random_state=int(rng.integers(1 << 30)), replace=True)
        sample = sample.reset_index(drop=True)
        options = Options.of_campaign(c)
        mask = schedule_mask(np.ones((len(sample), PLAN_DAYS), bool), np.full(len(sample), 6), options.space,
                             DATE)
        idx, _ = cold_start(options, mask).sample(rng)
        frame = pd.concat([sample, options.actions(idx).drop(columns="value_proposition")], axis=1)
        frame["value_proposition"] = c.value_proposition
        frames.append(frame)
    train = pd.concat(frames, ignore_index=True)
    n = len(train)
    coupon = train["coupon_value"].to_numpy(float)
    hour = train["send_hour"].to_numpy(float)
    train["pushes_delivered"] = train["frequency"].astype(float)
    train["reward_open"] = (rng.random(n) < 0.05 + 0.06 * (np.abs(hour - 19) < 3)).astype(float)
    train["reward_conversion"] = (rng.random(n) < 0.03 + 0.004 * coupon).astype(float)
    train["reward_net_revenue"] = rng.normal(5, 10, n) + 0.4 * coupon
    train["redeemed"] = (rng.random(n) < 0.10 + 0.006 * coupon).astype(float)
    params = {**DEFAULT_PARAMS, "num_threads": 1}  # one thread: fast and free of contention on small data
    model = fit(train, FeatureSpec(reference_order_value=reference),
                TrainConfig(min_rows=100, max_rounds=40, params=params))
    assert set(model.heads) == {"open", "conversion", "net_revenue", "redemption"}
    return ServingPolicy(model, f"test-{COUNTRY}", "3", reference_order_value=reference)


@pytest.fixture(scope="session")
def policies(cold_policy, model_policy) -> dict[str, ServingPolicy]:
    return {"cold": cold_policy, "model": model_policy}


@pytest.fixture(scope="session")
def build_inputs(catalog, population):
    def build(policy: ServingPolicy, seed: int, **kwargs) -> DayInputs:
        return day_inputs(catalog, population, policy, seed, **kwargs)

    return build


MODEL_CAMPAIGNS = [
    "mlb-frete-gratis-reativacao",       # amount ladder with 0, conversion
    "mlb-entrega-full-24h",              # no coupon, open
    "mlb-volta-clientes-inativos",       # amount ladder without 0, net_revenue, 80% BAU, weekly cap 1
    "mlb-parcelado-eletronicos",         # no coupon, net_revenue
    "mlb-mp-cashback-supermercado",      # no coupon, conversion, 1-3 a week
    "mlb-desconto-moda",                 # percent ladder (capped) without 0, net_revenue, cost share 0.6
    "mlb-desconto-beleza",               # percent ladder without 0, conversion, cost share 0.5
    "mlb-carrinho-abandonado",           # amount ladder with 0, conversion, every weekday
    "mlb-lembrete-navegacao",            # no coupon, open, 1-3 a week
    "mlb-fidelidade-presente-clientes",  # amount ladder without 0, net_revenue
]
"""The model policy scores every option of every campaign (the slow part): its standard days use these ten
campaigns, which cover every objective, coupon kind, ladder shape and frequency rule of the catalog."""


@pytest.fixture(scope="session")
def run(policies, build_inputs):
    """`run(policy_name, seed)`: the DayInputs and Assignment of a standard day (memoized for the session).

    Cold start days use every active MLB push campaign; model days the ten of `MODEL_CAMPAIGNS`."""
    cache: dict = {}

    def get(policy: str, seed: int):
        if (policy, seed) not in cache:
            ids = MODEL_CAMPAIGNS if policy == "model" else None
            inputs = build_inputs(policies[policy], seed, campaign_ids=ids)
            cache[(policy, seed)] = (inputs, assign(inputs))
        return cache[(policy, seed)]

    return get
