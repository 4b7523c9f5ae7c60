"""What the reward model sees: the user's context (the `user_features` mart of the day before the decision) and
the five action dimensions of a weekly plan, encoded as one numeric matrix.

Categorical columns use fixed vocabularies from `pushgrowth.domain`, so a code means the same thing in every
model version and for every country. The action features are grouped by dimension (`ACTION_FEATURES`): the
reward model lets trees combine the context with *one* dimension at a time (LightGBM interaction constraints),
which makes its score additive across dimensions; see `pushgrowth.bandit.model`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pushgrowth.domain import CATEGORIES, LIFECYCLE_SEGMENTS, PLATFORMS, TONES, VALUE_PROPOSITIONS

DIMENSIONS = ("coupon", "template", "hour", "weekday", "frequency")
"""The five things a decision chooses, in the order of the factored policy."""

CONTEXT_NUMERIC = (
    "days_since_signup", "days_since_last_session", "days_since_last_order", "lifetime_orders", "lifetime_gmv",
    "avg_order_value", "sessions_28d", "orders_28d", "gmv_28d", "share_sessions_morning", "share_sessions_midday",
    "share_sessions_afternoon", "share_sessions_evening", "share_sessions_night", "share_sessions_weekend",
    "session_hour_mean", "session_hour_concentration", "usual_active_hour", "weekend_activity_share", "pushes_7d",
    "pushes_28d", "opens_28d", "open_rate_28d", "coupon_redemptions_90d", "coupon_discount_90d",
    "days_since_last_push", "mp_user",
)
"""Columns of `user_features` used as numbers (booleans become 0/1; nulls stay NaN, which LightGBM handles)."""

VOCABULARIES: dict[str, tuple[str, ...]] = {
    "segment": LIFECYCLE_SEGMENTS,
    "platform": PLATFORMS,
    "category_interest": CATEGORIES,
    "value_proposition": VALUE_PROPOSITIONS,
    "tone": TONES,
}
CONTEXT_CATEGORICAL = ("segment", "platform", "category_interest", "value_proposition")
"""`value_proposition` is the campaign's: the same user reacts differently to cashback and to free shipping."""

ACTION_FEATURES: dict[str, tuple[str, ...]] = {
    "coupon": ("coupon_discount", "coupon_ratio"),
    "template": ("tone",),
    "hour": ("send_hour", "hour_affinity", "hour_gap"),
    "weekday": ("send_weekday", "weekday_affinity"),
    "frequency": ("frequency",),
}
"""Model inputs per action dimension: the coupon as its expected discount on the user's typical order (so amount
and percent coupons compare), the template by its tone, the local hour, the anchor weekday and the frequency.

`hour_affinity`, `hour_gap` and `weekday_affinity` cross the action with the user's habits: the share of the
user's sessions in the part of the day of the send hour, the hours between the send hour and the user's usual
active hour (the CRM's 90-day summary, else the mean hour of the last 28 days' sessions), and how much more (or
less) than average the user is active on the kind of day (weekend or weekday) of the anchor weekday. A tree
finds "send when this user is on the app" with one split on them, where
learning it from `send_hour` and the session statistics would take many."""

PARTS_OF_DAY = (("morning", 6, 10), ("midday", 11, 14), ("afternoon", 15, 18), ("evening", 19, 22))
"""Local hour ranges of `int_user_activity_daily`'s session counts; other hours are `night`."""
WEEKEND_SHARE = 2 / 7

CATEGORICAL_FEATURES = ("segment", "platform", "category_interest", "value_proposition", "tone", "send_weekday")
ACTION_COLUMNS = ("coupon_kind", "coupon_value", "coupon_cap", "tone", "send_hour", "send_weekday", "frequency")
"""Columns an action frame must have (one row per (user, action) to score)."""


class FeatureError(ValueError):
    """A context or action frame that lacks a column the model needs."""


def expected_discount(kind: np.ndarray, value: np.ndarray, cap: np.ndarray,
                      order_value: np.ndarray) -> np.ndarray:
    """The discount a coupon gives on an order of `order_value`: amounts up to 90% of it, percentages up to
    the cap.

    The same rule as the World's (`pushgrowth.sim.response.discount`), stated here for the marketplace's side.
    """
    kind = np.asarray(kind)
    value = np.asarray(value, dtype=np.float64)
    amount = np.minimum(value, 0.9 * order_value)
    capped = np.where(np.asarray(cap, dtype=np.float64) > 0, cap, np.inf)
    percent = np.minimum(value / 100.0 * order_value, capped)
    return np.where(kind == "amount", amount, np.where(kind == "percent", percent, 0.0))


TONE_COLUMNS = tuple(f"tone_{kind}_{tone}" for tone in TONES for kind in ("pushes", "opens"))
"""`user_features`' history per tone of wording: delivered pushes of the last 90 days and their opens."""
HABIT_COLUMNS = (*(f"share_sessions_{part}" for part, _, _ in PARTS_OF_DAY), "share_sessions_night",
                 "usual_active_hour", "session_hour_mean", "weekend_activity_share", "share_sessions_weekend",
                 *TONE_COLUMNS)
"""The context columns the send-time features and the policy's habit priors read."""
TONE_OPEN_RATE = 0.06
"""The open rate a user's tone history is read against before their own (a typical marketing push's; the
World's random plans open 5-7%): fixed, so that a user's prior is the same whoever else is scored with them."""
TONE_SHRINK_PUSHES = 5.0
"""Pushes of weight that pull a user's own open rate towards `TONE_OPEN_RATE`."""
Context = pd.DataFrame | Mapping[str, np.ndarray]
"""User context: the user_features frame, or `habits(frame)` when the same users are encoded many times."""


def _column(context: Context, name: str) -> np.ndarray:
    if isinstance(context, pd.DataFrame):
        if name not in context.columns:
            return np.full(len(context), np.nan)
        column = context[name]
        if column.dtype == np.float64:  # the usual case, without to_numeric's checks
            return column.to_numpy(np.float64, copy=True)
        return pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    return context[name]


def habits(context: pd.DataFrame) -> dict[str, np.ndarray]:
    """The send-time columns of a context frame as float arrays, read once: scoring encodes the same users for
    every option of every dimension, and converting the frame's columns each time was most of its cost."""
    return {name: _column(context, name) for name in HABIT_COLUMNS}


def hour_affinity(context: Context, hour: np.ndarray) -> np.ndarray:
    """Share of the user's sessions (28 days) in the part of the day that contains each send hour."""
    out = _column(context, "share_sessions_night")
    for part, start, end in PARTS_OF_DAY:
        out = np.where((hour >= start) & (hour <= end), _column(context, f"share_sessions_{part}"), out)
    return out


def hour_gap(context: Context, hour: np.ndarray) -> np.ndarray:
    """Hours (0-12) between the send hour and the user's usual active hour (the CRM's 90-day summary, else the
    circular mean hour of the last 28 days' sessions); NaN without either."""
    usual = _column(context, "usual_active_hour")
    usual = np.where(np.isfinite(usual), usual, _column(context, "session_hour_mean"))
    diff = np.abs(np.asarray(hour, dtype=np.float64) - usual) % 24
    return np.minimum(diff, 24 - diff)


def weekday_affinity(context: Context, weekday: np.ndarray) -> np.ndarray:
    """The user's activity on that kind of day relative to an even spread (1 = average, 2 = twice as active)."""
    weekend = _column(context, "weekend_activity_share")
    weekend = np.where(np.isfinite(weekend), weekend, _column(context, "share_sessions_weekend"))
    return np.where(weekday >= 5, weekend / WEEKEND_SHARE, (1 - weekend) / (1 - WEEKEND_SHARE))


def tone_affinity(context: Context, prior_variance: float) -> np.ndarray:
    """Per user and tone (columns in `TONES` order), the posterior mean of how much more (log-odds) the user
    opens that tone than their own average, from their history per tone (`TONE_COLUMNS`; 0 without it).

    One Newton step of a normal prior N(0, prior_variance) on each tone's effect, from the user's expected open
    rate p (their opens over pushes, shrunk towards `TONE_OPEN_RATE` by `TONE_SHRINK_PUSHES`):
    (opens - p x pushes) x v / (1 + v x p (1 - p) x pushes). A tone never sent stays 0; for a user whose whole
    history is one open of two pushes of a tone, that tone moves by +0.48 at v = 1 (+0.17 at v = 0.3); ten
    pushes of a tone never opened move it by -0.17 (-0.06).
    """
    pushes = np.column_stack([np.nan_to_num(_column(context, f"tone_pushes_{t}")) for t in TONES])
    opens = np.minimum(np.column_stack([np.nan_to_num(_column(context, f"tone_opens_{t}")) for t in TONES]), pushes)
    rate = (opens.sum(axis=1) + TONE_SHRINK_PUSHES * TONE_OPEN_RATE) / (pushes.sum(axis=1) + TONE_SHRINK_PUSHES)
    rate = rate[:, None]
    return prior_variance * (opens - rate * pushes) / (1.0 + prior_variance * rate * (1.0 - rate) * pushes)


@dataclass(frozen=True)
class FeatureSpec:
    """The model's input columns, in order; stored with every model so serving encodes exactly as training did."""

    context: tuple[str, ...] = CONTEXT_NUMERIC + CONTEXT_CATEGORICAL
    reference_order_value: float = 1.0
    """The country's typical order value: the order value of users who never bought, for coupon features."""
    vocabularies: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(VOCABULARIES))

    @property
    def columns(self) -> tuple[str, ...]:
        return self.context + tuple(c for d in DIMENSIONS for c in ACTION_FEATURES[d])

    @property
    def categorical(self) -> list[int]:
        return [i for i, c in enumerate(self.columns) if c in CATEGORICAL_FEATURES]

    def interaction_constraints(self) -> list[list[int]]:
        """One set per action dimension: the context plus that dimension's features (see the module docstring)."""
        context = list(range(len(self.context)))
        index = {c: i for i, c in enumerate(self.columns)}
        return [context + [index[c] for c in ACTION_FEATURES[d]] for d in DIMENSIONS]

    def order_value(self, context: pd.DataFrame) -> np.ndarray:
        aov = pd.to_numeric(context["avg_order_value"], errors="coerce").to_numpy(np.float64, na_value=np.nan) \
            if "avg_order_value" in context else np.full(len(context), np.nan)
        return np.where(np.isfinite(aov) & (aov > 0), aov, self.reference_order_value)

    def encode_context(self, context: pd.DataFrame) -> np.ndarray:
        """The context block (rows x len(self.context)) as float32; categorical values become vocabulary codes."""
        missing = [c for c in self.context if c not in context.columns]
        if missing:
            raise FeatureError(f"context lacks columns {missing} (expected the user_features mart's columns)")
        out = np.empty((len(context), len(self.context)), dtype=np.float32)
        for j, column in enumerate(self.context):
            out[:, j] = self._encode(column, context[column])
        return out

    def encode_actions(self, actions: pd.DataFrame, context: pd.DataFrame) -> np.ndarray:
        """The action block of action rows aligned one to one with context rows."""
        missing = [c for c in ACTION_COLUMNS if c not in actions.columns]
        if missing:
            raise FeatureError(f"actions lack columns {missing}; expected {list(ACTION_COLUMNS)}")
        return self.encode_action_arrays(
            context, actions["coupon_kind"].to_numpy(object),
            actions["coupon_value"].fillna(0).to_numpy(np.float64),
            actions["coupon_cap"].fillna(0).to_numpy(np.float64), self._encode("tone", actions["tone"]),
            actions["send_hour"].to_numpy(np.float64), actions["send_weekday"].to_numpy(np.float64),
            actions["frequency"].to_numpy(np.float64))

    def encode_action_arrays(self, context: Context, coupon_kind: np.ndarray, coupon_value: np.ndarray,
                             coupon_cap: np.ndarray, tone_code: np.ndarray, hour: np.ndarray, weekday: np.ndarray,
                             frequency: np.ndarray, order_value: np.ndarray | None = None) -> np.ndarray:
        """The action block from plain arrays (the fast path of scoring: no frame per plan)."""
        order_value = self.order_value(context) if order_value is None else order_value
        discount = expected_discount(coupon_kind, coupon_value, coupon_cap, order_value)
        n = len(order_value)
        blocks = {
            "coupon_discount": discount, "coupon_ratio": discount / order_value,
            "tone": np.broadcast_to(tone_code, (n,)), "send_hour": np.broadcast_to(hour, (n,)),
            "hour_affinity": hour_affinity(context, np.broadcast_to(hour, (n,))),
            "hour_gap": hour_gap(context, np.broadcast_to(hour, (n,))),
            "send_weekday": np.broadcast_to(weekday, (n,)),
            "weekday_affinity": weekday_affinity(context, np.broadcast_to(weekday, (n,))),
            "frequency": np.broadcast_to(frequency, (n,)),
        }
        names = [c for d in DIMENSIONS for c in ACTION_FEATURES[d]]
        return np.column_stack([blocks[c] for c in names]).astype(np.float32)

    def matrix(self, context: pd.DataFrame, actions: pd.DataFrame) -> np.ndarray:
        """Rows of context and actions aligned one to one."""
        if len(context) != len(actions):
            raise FeatureError(f"{len(context)} context rows for {len(actions)} action rows; align them first")
        return np.hstack([self.encode_context(context), self.encode_actions(actions, context)])

    def _encode(self, column: str, values: pd.Series) -> np.ndarray:
        vocabulary = self.vocabularies.get(column)
        if vocabulary is None:
            if values.dtype == bool or str(values.dtype) == "boolean":
                return values.astype("Float64").to_numpy(np.float64, na_value=np.nan)
            return pd.to_numeric(values, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        codes = pd.Index(list(vocabulary), dtype=object).get_indexer(values.astype(object)).astype(np.float64)
        return np.where(codes < 0, np.nan, codes)

    def to_dict(self) -> dict:
        return {"context": list(self.context), "reference_order_value": self.reference_order_value,
                "vocabularies": {k: list(v) for k, v in self.vocabularies.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSpec:
        return cls(context=tuple(data["context"]), reference_order_value=float(data["reference_order_value"]),
                   vocabularies={k: tuple(v) for k, v in data["vocabularies"].items()})
