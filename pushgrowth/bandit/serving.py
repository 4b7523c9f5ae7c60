"""The policy a country serves: its champion model (or none yet) with the exploration settings.

`ServingPolicy.distribution` gives, for the users of one campaign, the per-block probabilities the bandit group
draws from; the same call on logged rows gives a candidate policy's probabilities for off-policy evaluation.
Campaigns whose objective has no trained head yet are served by the open head for when and how the push speaks
(`PROXY_DIMENSIONS`) and explore around BAU for the rest; before any head exists, the cold-start policy explores
around BAU in every dimension, except a net revenue campaign's coupon, explored around the coupon with the best
expected margin (`ServingPolicy.coupon_reference`). Once a conversion head is trained, it chooses the coupon and
the frequency of its campaigns while the open head keeps choosing when and how the push speaks
(`OPEN_LED_OBJECTIVES`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

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
    block,
    cold_start,
    model_policy,
)

REDEMPTION_PRIOR = 0.10
"""P(a coupon is redeemed) before the redemption head exists: about what coupon pushes show in the World."""
TAKE_RATE = 0.13
"""The marketplace's margin on GMV, as in dbt's `take_rate` var: the value of an order to the marketplace."""

PRICED_COUPON_OBJECTIVES = ("net_revenue",)
"""Objectives whose coupon block is scored as what a coupon is expected to earn minus what it is expected to cost
(`ServingPolicy.coupon_margin`), not by the objective's own head. The net revenue head learns the user's whole
window, organic orders included, whose noise (a standard deviation about six times the mean) hides a coupon's
cost: the bandit sent coupons in about two plans in three, and the World's oracle values BAU's plan with its
coupon removed above BAU's own on net revenue campaigns (demo, 6,000 decisions a country: +0.052 USD a decision
in MLA, +0.079 in MLB, +0.046 in MLM; every larger coupon worse). The cost is known (the redemption head, the
discount on the user's typical order, the marketplace's share); the gain, more orders, is the conversion head's
coupon effect times the order's margin. On the 28-day run's logged contexts after day 14 (seed 7), this moved net
revenue campaigns' oracle net revenue from -0.029 to +0.004 USD a decision (MLA) and from -0.075 to -0.024
(MLB), against BAU's -0.024 and -0.078."""


PROXY_DIMENSIONS = ("template", "hour", "weekday")
"""What the open head chooses when it stands in for a conversion or net revenue head (see `FALLBACK_HEAD`): when
and how the push speaks. A coupon or a second push raises opens, but whether it pays shows in orders, coupon
costs and fatigue, which the open head cannot see: those dimensions keep the cold-start block around BAU until
the objective's own head is trained (a net revenue campaign's coupon: around the coupon with the best expected
margin, see `ServingPolicy.coupon_reference`)."""

OPEN_LED_OBJECTIVES = ("conversion",)
"""Objectives whose own head chooses the coupon and the frequency while the open head keeps choosing
`PROXY_DIMENSIONS`. A push converts only if it is opened, and when and how it speaks act on the conversion
through the open: P(conversion) = P(open) x P(conversion | open), so in log-odds (small probabilities) the open
head's option deltas are the conversion head's for those dimensions, learned from several times as many
positives that need no 10-day window. In the 28-day run (seed 7), the World's oracle on the week of logged
contexts after six training dates (three countries, days 15 and 20) put this policy's conversions per decision
for conversion campaigns +0.03 pp over the conversion head's alone on average, from -0.02 pp (MLM, both days) to
+0.11 pp (MLA on day 20, whose conversion head had stopped at ten rounds), and their open rate +0.14 pp. Net
revenue is left out: an opened push also gets its coupon used on orders that would have happened anyway, and
the same swap lifted net revenue campaigns' open rate by 1.7 to 2.4 pp but lowered their net revenue in three
of four cases."""


SETTINGS_KEY = "pushgrowth.serving"
"""The Parquet metadata key under which a decisions partition keeps the settings of the policy that served it."""


@dataclass(frozen=True)
class ServingSettings:
    """What, besides the model's own files, decides a serving policy's probabilities: logged with every
    decisions partition, so the policy that served can be rebuilt exactly (`pushgrowth trace`)."""

    model_name: str | None
    model_version: str | None
    config: PolicyConfig
    reference_order_value: float
    redemption_prior: float = REDEMPTION_PRIOR

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "config": asdict(self.config)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ServingSettings:
        data = json.loads(text)
        return cls(**{**data, "config": PolicyConfig(**data["config"])})

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
    def settings(self) -> ServingSettings:
        return ServingSettings(self.model_name, self.model_version, self.config, self.reference_order_value,
                               self.redemption_prior)

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
        """The dimensions `head` scores for a campaign of `objective`: all of them with the objective's own head,
        only `PROXY_DIMENSIONS` when the open head stands in for it."""
        if objective is None or OBJECTIVE_HEADS[objective] == head:
            return DIMENSIONS
        return PROXY_DIMENSIONS

    def open_led(self, head: str, objective: str | None) -> bool:
        """True when the open head's deltas replace `head`'s in `PROXY_DIMENSIONS` (see `OPEN_LED_OBJECTIVES`):
        the objective's own probability head serves, and the model has an open head too."""
        return (self.model is not None and objective in OPEN_LED_OBJECTIVES and head == OBJECTIVE_HEADS[objective]
                and head != FALLBACK_HEAD and self.model.has(FALLBACK_HEAD)
                and self.model.heads[head].is_probability and self.model.heads[FALLBACK_HEAD].is_probability)

    def heads_used(self, objective: str) -> tuple[str, ...]:
        """Every head whose scores choose a campaign's plan: the serving head, the open head when it leads, and
        the conversion head when it prices a coupon (`coupon_margin`). Budget pacing's redemption head prices
        coupons for every objective and is not listed."""
        head = self.head(objective)
        if head is None:
            return ()
        if self.open_led(head, objective):
            return (head, FALLBACK_HEAD)
        if self.priced_coupons(head, objective) and self.model is not None and self.model.has("conversion"):
            return (head, "conversion")
        return (head,)

    def priced_coupons(self, head: str, objective: str | None) -> bool:
        """True when the coupon block is `coupon_margin` (see `PRICED_COUPON_OBJECTIVES`): the objective's own
        money head serves it."""
        return (self.model is not None and objective in PRICED_COUPON_OBJECTIVES
                and head == OBJECTIVE_HEADS[objective] and not self.model.heads[head].is_probability)

    def scores(self, head: str, context: pd.DataFrame, options: Options, objective: str | None = None) -> Scores:
        """`head`'s scores of the campaign's options; for an open-led objective, `PROXY_DIMENSIONS` carry the open
        head's deltas (both heads are in log-odds, so the sum stays the objective's log-odds to first order); for
        a priced-coupon objective, the coupon's deltas are `coupon_margin` (in money, as the head's)."""
        assert self.model is not None
        scores = Scores.compute(self.model, head, context, options, dims=self.dimensions(head, objective))
        if self.open_led(head, objective):
            lead = Scores.compute(self.model, FALLBACK_HEAD, context, options, dims=PROXY_DIMENSIONS)
            scores.deltas.update({d: lead.deltas[d] for d in PROXY_DIMENSIONS})
        if self.priced_coupons(head, objective):
            scores.deltas["coupon"] = self.coupon_margin(context, options)
        return scores

    def coupon_margin(self, context: pd.DataFrame, options: Options) -> np.ndarray:
        """(users x coupon options): the margin a coupon is expected to add, TAKE_RATE x the user's typical order
        x the rise in P(conversion) the conversion head gives it (none before that head exists, or without a
        model), minus its expected cost (`expected_cost`, at the campaign's cost share), relative to the BAU
        coupon."""
        value = -self.expected_cost(context, options, options.cost_share)
        if self.model is not None and self.model.has("conversion"):
            s = Scores.compute(self.model, "conversion", context, options, dims=("coupon",))
            p = 1.0 / (1.0 + np.exp(-(s.base[:, None] + s.deltas["coupon"])))
            order_value = self.model.spec.order_value(context)
            value = value + TAKE_RATE * order_value[:, None] * (p - p[:, [options.bau[0]]])
        return value - value[:, [options.bau[0]]]

    def coupon_reference(self, objective: str | None, context: pd.DataFrame, options: Options) -> np.ndarray | None:
        """Per user, the coupon the cold coupon block explores around instead of BAU's, or None (BAU's).

        For a priced-coupon objective (`PRICED_COUPON_OBJECTIVES`) whose own head does not serve yet (cold start,
        or the open head standing in), the coupon with the best `coupon_margin`: before a conversion head exists
        a coupon is pure cost there too, so that is the campaign's cheapest coupon; once one exists, the coupon
        whose expected orders pay for it. The block still spreads `cold_epsilon` over every coupon, which is
        what the conversion and net revenue heads learn coupons from. `PolicyConfig.cold_coupon_at_margin` False
        keeps BAU's.
        """
        if (self.bau or not self.config.cold_coupon_at_margin or objective not in PRICED_COUPON_OBJECTIVES
                or options.sizes[0] < 2):
            return None
        head = self.head(objective)
        if head is not None and self.priced_coupons(head, objective):
            return None
        return self.coupon_margin(context, options).argmax(axis=1)

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
                     expected_cost: np.ndarray | None = None, scores: Scores | None = None,
                     reference: np.ndarray | None = None) -> tuple[Distribution, Scores | None]:
        """The per-block probabilities for `context`'s users; `scores` and `reference` (the coupon reference
        of `coupon_reference`) may be passed when the caller already has them for these users."""
        if self.bau:
            return bau_distribution(options, mask, coupon_allowed), None
        head = self.head(objective)
        if reference is None:
            reference = self.coupon_reference(objective, context, options)
        if head is None:
            return cold_start(options, mask, self.config, coupon_allowed, context, reference), None
        if scores is None:
            scores = self.scores(head, context, options, objective)
        return model_policy(scores, options, mask, self.config, cost_price, expected_cost, coupon_allowed,
                            context, reference), scores

    def coupon_spend(self, scores: Scores, options: Options, cost_price: float, expected_cost: np.ndarray,
                     reference: np.ndarray | None) -> float:
        """The expected coupon cost of the users of `scores` at `cost_price` (what pacing bisects on)."""
        return float((block(scores, options, "coupon", self.config, cost_price, expected_cost, reference)
                      * expected_cost).sum())


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
