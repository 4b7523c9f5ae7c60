"""The policy a country serves: its champion model (or none yet) with the exploration settings.

`ServingPolicy.distribution` gives, for the users of one campaign, the per-block probabilities the bandit group
draws from; the same call on logged rows gives a candidate policy's probabilities for off-policy evaluation.
Campaigns whose objective has no trained head yet are served by the open head for when and how the push speaks
(`PROXY_DIMENSIONS`) and explore around BAU for the rest; before any head exists, the cold-start policy explores
around BAU in every dimension.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pushgrowth.bandit.features import DIMENSIONS, FeatureSpec, expected_discount
from pushgrowth.bandit.model import FALLBACK_HEAD, OBJECTIVE_HEADS, RewardModel
from pushgrowth.bandit.policy import (
    Distribution,
    Options,
    PolicyConfig,
    Scores,
    bau_plan,
    cold_start,
    model_policy,
)

REDEMPTION_PRIOR = 0.10
"""P(a coupon is redeemed) before the redemption head exists: about what coupon pushes show in the World."""


PROXY_DIMENSIONS = ("template", "hour", "weekday")
"""What the open head chooses when it stands in for a conversion or net revenue head (see `FALLBACK_HEAD`): when
and how the push speaks. A coupon or a second push raises opens, but whether it pays shows in orders, coupon
costs and fatigue, which the open head cannot see: those dimensions keep the cold-start block around BAU until
the objective's own head is trained."""


@dataclass
class ServingPolicy:
    """The champion's model (None before the first one) with the exploration settings; `bau=True` is the fixed
    business-as-usual policy, for off-policy comparisons."""

    model: RewardModel | None = None
    model_name: str | None = None
    model_version: str | None = None
    config: PolicyConfig = field(default_factory=PolicyConfig)
    redemption_prior: float = REDEMPTION_PRIOR
    reference_order_value: float = 1.0
    bau: bool = False
    """The country's typical order value (its policy's), for coupon costs of users who never bought."""

    @property
    def label(self) -> str:
        return f"{self.model_name} v{self.model_version}" if self.model_version else "cold start (no champion)"

    def head(self, objective: str) -> str | None:
        """The head serving `objective`: its own, else the open head (see `FALLBACK_HEAD`),
        else none (cold start)."""
        if self.model is None:
            return None
        for head in (OBJECTIVE_HEADS[objective], FALLBACK_HEAD):
            if self.model.has(head):
                return head
        return None

    @staticmethod
    def dimensions(head: str, objective: str | None) -> tuple[str, ...]:
        """The dimensions `head` chooses for a campaign of `objective`: all of them with the objective's own head,
        only `PROXY_DIMENSIONS` when the open head stands in for it."""
        if objective is None or OBJECTIVE_HEADS[objective] == head:
            return DIMENSIONS
        return PROXY_DIMENSIONS

    def scores(self, head: str, context: pd.DataFrame, options: Options, objective: str | None = None) -> Scores:
        assert self.model is not None
        return Scores.compute(self.model, head, context, options, dims=self.dimensions(head, objective))

    def expected_cost(self, context: pd.DataFrame, options: Options, cost_share: float) -> np.ndarray:
        """(users x coupon options): P(redeemed) x the discount on the user's typical order
        x the marketplace's share."""
        space = options.space
        values = np.asarray(space.coupon_values, dtype=np.float64)
        n = len(context)
        spec = (self.model.spec if self.model is not None
                else FeatureSpec(reference_order_value=self.reference_order_value))
        order_value = spec.order_value(context)
        kinds = np.where(values > 0, space.coupon_kind, "none")
        discount = np.column_stack([
            expected_discount(np.full(n, kinds[k]), np.full(n, v), np.full(n, space.coupon_cap), order_value)
            for k, v in enumerate(values)]) if len(values) else np.zeros((n, 0))
        if self.model is not None and self.model.has("redemption"):
            s = Scores.compute(self.model, "redemption", context, options, dims=("coupon",))
            p = 1.0 / (1.0 + np.exp(-(s.base[:, None] + s.deltas["coupon"])))
        else:
            p = np.full((n, len(values)), self.redemption_prior)
        return np.where(values[None, :] > 0, p * discount * cost_share, 0.0)

    def distribution(self, objective: str, context: pd.DataFrame, options: Options, mask: np.ndarray,
                     coupon_allowed: np.ndarray | None = None, cost_price: float = 0.0,
                     expected_cost: np.ndarray | None = None) -> tuple[Distribution, Scores | None]:
        if self.bau:
            return bau_distribution(options, mask, coupon_allowed), None
        head = self.head(objective)
        if head is None:
            return cold_start(options, mask, self.config, coupon_allowed, context), None
        scores = self.scores(head, context, options, objective)
        return model_policy(scores, options, mask, self.config, cost_price, expected_cost, coupon_allowed), scores


def bau_distribution(options: Options, mask: np.ndarray, coupon_allowed: np.ndarray | None = None) -> Distribution:
    """The BAU plan as a (degenerate) distribution: probability 1 on the plan each user would get."""
    n = mask.shape[0]
    plan = bau_plan(options, mask, coupon_allowed)
    rows = np.arange(n)

    def one_hot(size: int, index: np.ndarray) -> np.ndarray:
        p = np.zeros((n, size))
        ok = index >= 0
        p[rows[ok], index[ok]] = 1.0
        return p

    schedule = np.zeros(mask.shape)
    ok = plan["weekday"] >= 0
    schedule[rows[ok], plan["weekday"][ok], plan["frequency"][ok]] = 1.0
    sizes = options.sizes
    return Distribution(one_hot(sizes[0], plan["coupon"]), one_hot(sizes[1], plan["template"]),
                        one_hot(sizes[2], plan["hour"]), schedule, "bau")
