"""The exploration policy: a factored softmax over a campaign's joint actions, with exact propensities.

For one user and campaign the policy draws a coupon, a template, an hour and a *schedule* (the anchor weekday and
the frequency, drawn jointly because together they fix the days the pushes land on). Each block has a preference
distribution `q_d` and blocks are drawn independently, so the probability of the joint action is the product of
the blocks' probabilities: exact, and logged with every decision.

- Model policy: `q_d = (1 - epsilon) * softmax(delta_d / (temperature * scale)) + epsilon / |options|`, where
  `delta_d` is the reward model's additive score of each option (see `Scores`). Because the score is additive,
  the product of the per-dimension softmaxes *is* the softmax over joint actions of the summed score; epsilon
  keeps every option alive, so off-policy evaluation always has support. Coupons carry a price on their expected
  cost (`cost_price`, budget pacing's Lagrange multiplier).
- Cold start (no model for the objective yet): `q_d` puts `1 - cold_epsilon` on the business-as-usual option
  (the schedule as BAU would send it, moved off days another push already takes) and spreads the rest evenly,
  the hour's half evenly and half near the user's usual active hour, so early data explores around what the
  team already sends; a further `cold_hour_habit` of the hour block moves from the BAU hour to the hours near
  the user's usual one.
- Eligibility is applied inside the policy: a schedule is allowed only if each of its pushes lands on a day
  without another push to the user and the user's weekly capacity covers the frequency; a coupon is allowed only
  if the budget allows coupons. Disallowed options get probability 0 and the block is renormalized, so logged
  propensities stay exact.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pushgrowth.bandit.features import DIMENSIONS, Context, habits, hour_gap, tone_affinity, weekday_affinity
from pushgrowth.allocation import windows
from pushgrowth.bandit.model import RewardModel
from pushgrowth.domain import PLAN_DAYS, TONES, WEEKDAYS, ActionSpace, plan_send_offsets


SCORE_CHUNK = 20_000
"""Users scored per model call: about 25 plans each, so a chunk is ~0.5M rows (~100 MB of features)."""


TONE_HABIT_DEFAULT = 1.0
"""`PolicyConfig.tone_habit`'s default prior variance (see its docstring for how it was chosen)."""


@dataclass(frozen=True)
class PolicyConfig:
    temperature: float = 0.1
    """Softmax temperature in units of the head's score scale (log-odds for open and conversion)."""
    epsilon: float = 0.05
    """Share of each block drawn uniformly by the model policy: exploration that never stops."""
    cold_epsilon: float = 0.2
    """Share of each block drawn uniformly around BAU before a model exists (and in dimensions no trained head
    speaks to): across five blocks, two plans in three still differ from BAU somewhere, enough for the first
    models to learn from, while the bandit group does not pay for a week of half-random plans."""
    cold_hour_width: float | None = 2.0
    """Cold start's exploration of the send hour leans to the hours the user is usually active: half of the
    share `cold_epsilon` of the hour block goes to the hours in proportion to exp(-gap^2 / (2 width^2)), `gap`
    being the hours between each and the user's usual active hour (`features.hour_gap`), the other half evenly
    (a user without habits gets it all evenly; None: evenly for everyone). An exploration push at an hour the
    user is never on the app costs opens: with an even spread, the World's oracle put cold start 0.27 pp of
    open rate under BAU in the 28-day run's first week (MLA), level with BAU with this one. The even half keeps
    every hour's propensity at least half what it was, so off-policy estimates keep their support: leaning all
    of it to the usual hours lifted cold start to 0.29 pp over BAU but left the SNIPS interval of a model
    policy covering its true value in 17 of 20 test scenarios (DR 19), against 20 of 20 either way with half."""
    cold_hour_habit: float = 0.3
    """A further share of cold start's hour block taken from the BAU hour and sent by closeness to the user's usual
    active hour (the same weights; users without habits keep the BAU hour): with the defaults, a user with habits
    gets the BAU hour with 0.5, the hours near their usual one with 0.4 and an even spread with 0.1, so every
    hour's propensity stays what it was. On the 28-day run's first four days (MLA, seed 7, 12,000 logged
    contexts), the World's oracle put cold start's open rate 0.12 pp over BAU's without it and 0.60 pp over with
    it (0.29 pp at 0.1, 0.86 pp at 0.4); the first models then learn the hour from plans that mostly reach users
    when they are on the app. 0 gives the cold start of `cold_epsilon` alone."""
    bau_prior: float = 0.1
    """Bonus of the BAU option in every block, in units of the head's scale: the model must beat the team's
    default by this much before the policy prefers something else."""
    weekday_habit: float = 1.0
    """Prior of the model policy's weekday block, in log-odds (probability heads only): each anchor weekday gets
    `weekday_habit * log(weekday_affinity)`, the user's activity on that kind of day (weekend or weekday) relative
    to an even spread (`features.weekday_affinity`, clipped to 0.05..5; 0 without habits). The reward model
    barely learns the weekday from a small country's log (its deltas were about +-0.002 log-odds in the 28-day
    run's MLA against a true +-0.4), and users open more on the kind of day they use the app. On the week after
    a training date of the 28-day run (seed 7, the World's oracle on 8,000 logged contexts each), it lifted the
    model policy's open rate over BAU from +1.33 to +1.51 pp (MLA, day 14), +1.20 to +1.35 (MLA, day 20), +1.01
    to +1.13 (MLB, day 14) and +1.25 to +1.52 pp (MLM, day 20); 0.5 gave about two thirds of that, 1.5 little
    more. It is part of the policy, so propensities stay exact; 0 turns it off."""
    tone_habit: float = TONE_HABIT_DEFAULT
    """Prior of the model policy's template block, in log-odds (probability heads only): each template gets the
    posterior mean of the user's affinity for its tone from their own history (delivered pushes and opens per
    tone over 90 days, `features.tone_affinity`), with this prior variance. Users' answer to a wording's tone is
    personal: nothing the platform knows about a user predicts it, so the reward model, which learns from the
    context, cannot; the user's own opens can. Chosen on the World's oracle, on the week of logged contexts
    after a training date of the 28-day run (seed 7, 8,000 contexts each), with the history built from the raw
    extracts as dbt builds it: the model policy's open rate over BAU went from +1.50 pp (off) to +1.75, +1.81
    and +1.85 pp at 0.3, 0.6 and 1.0 (MLA, day 20), +1.33 to +1.50, +1.57 and +1.62 (MLA, day 13), +1.32 to
    +1.58, +1.65 and +1.72 (MLB, day 20; +1.80 at 2.0) and +1.42 to +1.63, +1.73 and +1.78 (MLM, day 20). 1.0
    is wider than the World's own spread of tone affinities (0.3): with so few opens per user, leaning harder
    on them paid, and 2.0 added little more while exploring less. It is part of the policy, so propensities
    stay exact. 0 turns it off."""
    cold_coupon_at_margin: bool = True
    """Where the objective prices its coupons by their margin (net revenue campaigns, see
    `serving.PRICED_COUPON_OBJECTIVES`) but its own head does not serve yet (cold start, or the open head standing
    in), the coupon block explores around the coupon with the best expected margin (`ServingPolicy.coupon_reference`)
    instead of BAU's: the cheapest coupon until a conversion head can say what a coupon earns. Its cost is known
    from day one, its gain is not: on the demo's late net revenue decisions (seed 7), the World's oracle found the
    cheapest coupon the best for 85% to 100% of users in every campaign with a coupon ladder. With it, the demo's
    net revenue campaigns went from +0.008 to +0.027 USD a decision (MLA), -0.039 to -0.004 (MLB) and -0.044 to
    -0.010 (MLM) in the oracle's eyes, BAU's being -0.013, -0.049 and -0.071. False explores around BAU's
    coupon."""
    value_samples: int = 32
    """Monte Carlo draws per row to compute a policy's expected reward on log-odds heads."""

    def __post_init__(self) -> None:
        width = self.cold_hour_width
        if width is not None and (isinstance(width, bool) or not np.isfinite(width) or width <= 0):
            raise ValueError(f"PolicyConfig.cold_hour_width must be a positive number of hours (or None for an "
                             f"even spread), got {width!r}")
        if isinstance(self.weekday_habit, bool) or not (np.isfinite(self.weekday_habit) and self.weekday_habit >= 0):
            raise ValueError(f"PolicyConfig.weekday_habit must be a non-negative number of log-odds (0: off), got "
                             f"{self.weekday_habit!r}")
        if isinstance(self.tone_habit, bool) or not (np.isfinite(self.tone_habit) and self.tone_habit >= 0):
            raise ValueError(f"PolicyConfig.tone_habit must be a non-negative prior variance in log-odds squared "
                             f"(0: off), got {self.tone_habit!r}")
        habit, e = self.cold_hour_habit, self.cold_epsilon
        if isinstance(habit, bool) or not (np.isfinite(habit) and 0 <= habit <= 1 - e):
            raise ValueError(f"PolicyConfig.cold_hour_habit must be a share between 0 and 1 - cold_epsilon "
                             f"({1 - e:g}), got {habit!r}")


@dataclass(frozen=True)
class Options:
    """A campaign's options as arrays, and its business-as-usual plan as indices into them."""

    space: ActionSpace
    bau: tuple[int, int, int, int, int]
    """Indices of the BAU coupon, template, hour, weekday and frequency."""
    cost_share: float = 1.0
    """The marketplace's share of a coupon's discount (the campaign's `coupon.cost_share`): what a redeemed
    coupon costs it."""

    @classmethod
    def of(cls, space: ActionSpace, coupon: float, template_id: str, hour: int, weekday: int | str,
           frequency: int) -> Options:
        wd = WEEKDAYS.index(weekday) if isinstance(weekday, str) else int(weekday)
        try:
            bau = (space.coupon_values.index(float(coupon)), [t for t, _ in space.templates].index(template_id),
                   space.hours.index(int(hour)), space.weekdays.index(wd), space.frequencies.index(int(frequency)))
        except ValueError as exc:
            raise ValueError(f"BAU plan ({coupon}, {template_id}, {hour}h, weekday {wd}, x{frequency}) is not "
                             f"among the campaign's options: {exc}") from None
        return cls(space, bau)

    @classmethod
    def of_campaign(cls, campaign) -> Options:
        b = campaign.bau
        options = cls.of(campaign.action_space(), b.coupon, b.template, b.hour, b.weekday, b.frequency)
        return replace(options, cost_share=float(campaign.coupon.cost_share))

    @property
    def sizes(self) -> tuple[int, ...]:
        s = self.space
        return (len(s.coupon_values), len(s.templates), len(s.hours), len(s.weekdays), len(s.frequencies))

    def actions(self, idx: dict[str, np.ndarray]) -> pd.DataFrame:
        """The action frame (World / model columns plus template_id) of chosen option indices."""
        return pd.DataFrame(self.action_columns(idx))

    def action_columns(self, idx: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`actions` as one array per column (what many campaigns' actions are concatenated from)."""
        s = self.space
        coupon = np.asarray(s.coupon_values, dtype=np.float64)[idx["coupon"]]
        templates = np.asarray([t for t, _ in s.templates], dtype=object)
        tones = np.asarray([tone for _, tone in s.templates], dtype=object)
        n = len(coupon)
        return {
            "coupon_kind": np.where(coupon > 0, s.coupon_kind, "none").astype(object),
            "coupon_value": coupon,
            "coupon_cap": np.full(n, s.coupon_cap, dtype=np.float64),
            "template_id": templates[idx["template"]],
            "tone": tones[idx["template"]],
            "send_hour": np.asarray(s.hours, dtype=np.int64)[idx["hour"]],
            "send_weekday": np.asarray(s.weekdays, dtype=np.int64)[idx["weekday"]],
            "frequency": np.asarray(s.frequencies, dtype=np.int64)[idx["frequency"]],
            "value_proposition": np.full(n, s.value_proposition, dtype=object),
        }

    def reference(self, n: int) -> dict[str, np.ndarray]:
        return {d: np.full(n, self.bau[k], dtype=np.int64) for k, d in enumerate(DIMENSIONS)}


@dataclass
class Scores:
    """A head's raw score for every option of every dimension, as `base + delta_d[option]`
    (exact by additivity)."""

    head: str
    base: np.ndarray
    deltas: dict[str, np.ndarray]
    scale: float
    is_probability: bool

    @classmethod
    def compute(cls, model: RewardModel, head: str, context: pd.DataFrame, options: Options,
                chunk: int = SCORE_CHUNK, dims: tuple[str, ...] = DIMENSIONS) -> Scores:
        """Score 1 + sum of the option counts rows per user: the BAU plan, then each option of each dimension.

        Users are scored `chunk` at a time, so memory stays bounded whatever the audience's size. With `dims`,
        only those dimensions vary (the others' deltas stay 0): pacing needs only the coupon's.
        """
        if "value_proposition" not in context.columns:  # the campaign's, part of the context the model saw
            context = context.assign(value_proposition=options.space.value_proposition)
        if _SHARED:
            found = _SHARED[-1].lookup(model, head, context, options, chunk, dims)
            if found is not None:
                return found
        return cls._compute(model, head, context, options, chunk, dims)

    @classmethod
    def _compute(cls, model: RewardModel, head: str, context: pd.DataFrame, options: Options, chunk: int,
                 dims: tuple[str, ...]) -> Scores:
        booster = model.heads[head]
        plans = [(None, 0)] + [(d, v) for k, d in enumerate(DIMENSIONS) if d in dims
                               for v in range(options.sizes[k])]
        raws = [cls._raw(model, booster, context.iloc[a: a + chunk], options, plans)
                for a in range(0, max(len(context), 1), chunk)]
        raw = np.vstack(raws)
        base = raw[:, 0]
        deltas = {}
        for k, d in enumerate(DIMENSIONS):
            cols = [j for j, (dd, _) in enumerate(plans) if dd == d]
            deltas[d] = raw[:, cols] - base[:, None] if cols else np.zeros((len(base), options.sizes[k]))
        return cls(head, base, deltas, booster.scale, booster.is_probability)

    @staticmethod
    def _raw(model: RewardModel, booster, context: pd.DataFrame, options: Options,
             plans: list[tuple[str | None, int]]) -> np.ndarray:
        """Raw scores (users x plans); a plan is the BAU plan with one dimension set to one option."""
        n = len(context)
        spec = model.spec
        ctx = spec.encode_context(context)
        order_value = spec.order_value(context)
        s = options.space
        tones = [spec.vocabularies["tone"].index(t) if t in spec.vocabularies["tone"] else np.nan
                 for _, t in s.templates]
        user_habits = habits(context)
        width = ctx.shape[1]
        x = np.empty((len(plans) * n, len(spec.columns)), dtype=np.float32)  # a block of rows per plan
        for k, (dim, value) in enumerate(plans):
            pick = list(options.bau)
            if dim is not None:
                pick[DIMENSIONS.index(dim)] = value
            coupon = s.coupon_values[pick[0]]
            block = x[k * n:(k + 1) * n]
            block[:, :width] = ctx
            block[:, width:] = spec.encode_action_arrays(
                user_habits, np.full(n, s.coupon_kind if coupon > 0 else "none", dtype=object), np.full(n, coupon),
                np.full(n, s.coupon_cap), np.float64(tones[pick[1]]), np.float64(s.hours[pick[2]]),
                np.float64(s.weekdays[pick[3]]), np.float64(s.frequencies[pick[4]]), order_value)
        return booster.raw(x).reshape(len(plans), n).T

    @staticmethod
    @contextlib.contextmanager
    def shared(frame: pd.DataFrame, key: str = "trace_id") -> Iterator[None]:
        """Within the block, scores of any subset of `frame`'s rows (told apart by their `key`) are computed once
        for the whole frame, per model, head, action space and dimensions, and handed out as subsets.

        A row's scores depend on its own context alone, so they are the same numbers whichever rows they are
        computed with; off-policy evaluation scores the same decisions of a campaign day by day and policy by
        policy, and a few large batches cost far less than hundreds of small ones."""
        _SHARED.append(_SharedScores(frame, key))
        try:
            yield
        finally:
            _SHARED.pop()

    def subset(self, rows: np.ndarray) -> Scores:
        """The scores of some users only (`rows` indexes or masks the users)."""
        return Scores(self.head, self.base[rows], {d: v[rows] for d, v in self.deltas.items()}, self.scale,
                      self.is_probability)

    def raw(self, idx: dict[str, np.ndarray]) -> np.ndarray:
        rows = np.arange(len(self.base))
        return self.base + sum(self.deltas[d][rows, idx[d]] for d in DIMENSIONS)

    def value(self, idx: dict[str, np.ndarray]) -> np.ndarray:
        raw = self.raw(idx)
        return 1.0 / (1.0 + np.exp(-raw)) if self.is_probability else raw


class _SharedScores:
    """The scores cache of `Scores.shared`."""

    def __init__(self, frame: pd.DataFrame, key: str):
        self.frame, self.key = frame, key
        keys = frame[key] if key in frame.columns else pd.Series(dtype=object)
        self.index = pd.Index(keys) if keys.is_unique else None
        self.scores: dict[tuple, Scores] = {}

    def lookup(self, model: RewardModel, head: str, context: pd.DataFrame, options: Options, chunk: int,
               dims: tuple[str, ...]) -> Scores | None:
        if self.index is None or self.key not in context.columns:
            return None
        rows = self.index.get_indexer(context[self.key])
        if (rows < 0).any():
            return None
        cache_key = (id(model), head, options.space, chunk, tuple(dims))
        if cache_key not in self.scores:
            frame = self.frame
            if "value_proposition" not in frame.columns:
                frame = frame.assign(value_proposition=options.space.value_proposition)
            self.scores[cache_key] = Scores._compute(model, head, frame, options, chunk, dims)
        return self.scores[cache_key].subset(rows)


_SHARED: list[_SharedScores] = []
"""The active `Scores.shared` caches, innermost last (one at a time in practice)."""


def schedule_mask(free_days: np.ndarray, room: np.ndarray, space: ActionSpace, date: dt.date) -> np.ndarray:
    """(users x weekdays x frequencies) booleans: the plan's pushes all land on free days, within the room.

    `free_days` is (users x 7): day offsets 0..6 from the decision date without a push already scheduled.
    `room` is (users x 13), the pushes each user can still take in every 7-day window around the plan
    (`allocation.windows`), or (users,), the room of the plan's own week alone (decisions logged before
    rolling windows, and callers with no history).
    """
    free = np.asarray(free_days, dtype=bool)
    room = np.asarray(room)
    out = np.zeros((free.shape[0], len(space.weekdays), len(space.frequencies)), dtype=bool)
    for w, wd in enumerate(space.weekdays):
        for f, freq in enumerate(space.frequencies):
            days = list(plan_send_offsets(date, wd, freq))
            within = (room >= freq) if room.ndim == 1 else windows.fits(np.isin(np.arange(PLAN_DAYS), days), room)
            out[:, w, f] = free[:, days].all(axis=1) & within
    return out


def logged_room(rows: pd.DataFrame) -> np.ndarray:
    """The room `schedule_mask` had when the logged `rows` were decided: their `window_room` (every window) or,
    for rows logged before it existed, their `capacity` (the plan's week)."""
    if "window_room" in rows.columns and rows["window_room"].notna().all():
        return windows.decode_room(rows["window_room"])
    return rows["capacity"].astype(int).to_numpy()


@dataclass
class Distribution:
    """Per-block probabilities for n users: coupon (n x C), template (n x T), hour (n x H),
    schedule (n x W x F)."""

    coupon: np.ndarray
    template: np.ndarray
    hour: np.ndarray
    schedule: np.ndarray
    policy: str

    def __len__(self) -> int:
        return self.coupon.shape[0]

    def restrict_coupons(self, allowed: np.ndarray | None) -> None:
        """Keep only the allowed coupon options (n x C booleans) of each user, renormalized (a user with none
        allowed gets an all-zero coupon block: nothing sendable)."""
        self.coupon = _restrict(self.coupon, allowed)

    def sample(self, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Draw one joint action per user; returns option indices per dimension and the exact propensity."""
        idx = self._draw(rng.random((len(self), 4)))
        return idx, self.probability(idx)

    def _draw(self, u: np.ndarray) -> dict[str, np.ndarray]:
        """Option indices of the joint actions drawn with uniforms `u` (... x users x 4, one per block)."""
        n = len(self)
        flat = _inverse_cdf(self.schedule.reshape(n, -1), u[..., 3])
        n_f = self.schedule.shape[2]
        return {"coupon": _inverse_cdf(self.coupon, u[..., 0]), "template": _inverse_cdf(self.template, u[..., 1]),
                "hour": _inverse_cdf(self.hour, u[..., 2]), "weekday": flat // n_f, "frequency": flat % n_f}

    def probability(self, idx: dict[str, np.ndarray]) -> np.ndarray:
        """P(the joint action with these option indices) under this distribution, per user."""
        rows = np.arange(len(self))
        return (self.coupon[rows, idx["coupon"]] * self.template[rows, idx["template"]]
                * self.hour[rows, idx["hour"]] * self.schedule[rows, idx["weekday"], idx["frequency"]])

    def greedy(self) -> dict[str, np.ndarray]:
        n = len(self)
        flat = self.schedule.reshape(n, -1).argmax(axis=1)
        n_f = self.schedule.shape[2]
        return {"coupon": self.coupon.argmax(1), "template": self.template.argmax(1), "hour": self.hour.argmax(1),
                "weekday": flat // n_f, "frequency": flat % n_f}

    def expected_value(self, scores: Scores, rng: np.random.Generator, samples: int = 32) -> np.ndarray:
        """E[reward] of each user under this distribution, in the head's natural unit.

        Exact for additive (money) heads; for log-odds heads the link is not linear, so it is a Monte Carlo
        mean over `samples` draws (raw scores of sampled joint actions come from the additive table, no model
        call). A fixed generator keeps it reproducible.
        """
        if not scores.is_probability:
            flat = self.schedule.reshape(len(self), -1)
            wf = (scores.deltas["weekday"][:, :, None]
                  + scores.deltas["frequency"][:, None, :]).reshape(len(self), -1)
            return (scores.base + (self.coupon * scores.deltas["coupon"]).sum(1)
                    + (self.template * scores.deltas["template"]).sum(1)
                    + (self.hour * scores.deltas["hour"]).sum(1)
                    + (flat * wf).sum(1))
        n = len(self)
        total = np.zeros(n)
        # the draws of many samples at once (the same stream as one `sample` after another), in chunks that keep
        # the comparison arrays (samples x users x options) near MC_CHUNK elements
        widest = max(self.coupon.shape[1], self.template.shape[1], self.hour.shape[1],
                     self.schedule.shape[1] * self.schedule.shape[2], 1)
        per = max(1, MC_CHUNK // max(n * widest, 1))
        for start in range(0, samples, per):
            values = scores.value(self._draw(rng.random((min(per, samples - start), n, 4))))
            for value in values:  # one sample after another, as the sum was always taken
                total += value
        return total / samples


MC_CHUNK = 4_000_000
"""Elements of the comparison arrays `expected_value` builds for a chunk of its Monte Carlo samples."""


def _inverse_cdf(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The option each uniform of `u` (users, or draws x users) lands on under its user's row of `p`."""
    cdf = np.cumsum(p, axis=1)
    cdf[:, -1] = np.inf  # guards against rounding: u < 1 always lands on an option
    idx = (u[..., None] >= cdf).sum(axis=-1)
    # never land on a zero-probability option through rounding at the boundaries
    bad = p[np.arange(p.shape[0]), idx] <= 0
    if bad.any():
        idx = np.where(bad, p.argmax(axis=1), idx)
    return idx


def _mix(preference: np.ndarray, epsilon: float) -> np.ndarray:
    return (1.0 - epsilon) * preference + epsilon / preference.shape[1]


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores / max(temperature, 1e-12)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _one_hot(n: int, size: int, index: int | np.ndarray, epsilon: float) -> np.ndarray:
    """1 - epsilon on `index` (one option for everyone, or one per user) plus epsilon spread evenly."""
    p = np.zeros((n, size))
    p[np.arange(n), np.broadcast_to(np.asarray(index), (n,))] = 1.0
    return _mix(p, epsilon)


def _restrict(p: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    """Zero the disallowed options and renormalize; a row with nothing allowed keeps all zeros."""
    if allowed is None:
        return p
    q = np.where(allowed, p, 0.0)
    total = q.sum(axis=1, keepdims=True)
    return np.divide(q, total, out=np.zeros_like(q), where=total > 0)


def _schedule(q_weekday: np.ndarray, q_frequency: np.ndarray, mask: np.ndarray) -> np.ndarray:
    joint = q_weekday[:, :, None] * q_frequency[:, None, :] * mask
    total = joint.sum(axis=(1, 2), keepdims=True)
    return np.divide(joint, total, out=np.zeros_like(joint), where=total > 0)


def block(scores: Scores, options: Options, dimension: str, config: PolicyConfig, cost_price: float = 0.0,
          expected_cost: np.ndarray | None = None, reference: np.ndarray | None = None,
          prior: np.ndarray | None = None) -> np.ndarray:
    """One dimension's preference distribution under the model policy (before eligibility); see `model_policy`.

    `reference` is each user's BAU option for the cold block of a dimension the model is silent on (default:
    the campaign's); the weekday and frequency of a user whose BAU schedule is taken move as BAU's would
    (`bau_schedule`). The `bau_prior` stays on the campaign's own option: where it is taken, the model's scores
    choose among the free days (centring the prior on the moved day too cost the 40,000-user demo's MLA model
    a fifth of its open gain in the oracle's eyes). Budget pacing prices coupons through this same function, so
    the spend it targets is the spend drawn. `prior` (users x options, in the head's raw units) is added to the
    model's scores (see `habit_priors`); a user's block is cold only where both are flat.
    """
    k = DIMENSIONS.index(dimension)
    delta = scores.deltas[dimension]
    n = len(delta)
    reference = np.full(n, options.bau[k]) if reference is None else reference
    score = delta.copy()
    if cost_price and expected_cost is not None:
        score = score - cost_price * expected_cost
    score[:, options.bau[k]] += config.bau_prior * scores.scale
    silent = np.ptp(delta, axis=1) <= 1e-12
    if prior is not None:
        score = score + prior
        silent &= np.ptp(prior, axis=1) <= 1e-12
    t = config.temperature * scores.scale
    learned = _mix(_softmax(score, t), config.epsilon)
    cold = _one_hot(n, options.sizes[k], reference, config.cold_epsilon)
    if cost_price and expected_cost is not None:  # the price tilts the cold block too, or pacing could not act
        tilt = np.exp(-(cost_price * expected_cost - (cost_price * expected_cost).min(axis=1, keepdims=True)) / t)
        cold = cold * tilt / (cold * tilt).sum(axis=1, keepdims=True)
    return np.where(silent[:, None], cold, learned)


def cold_start(options: Options, mask: np.ndarray, config: PolicyConfig = PolicyConfig(),
               coupon_allowed: np.ndarray | None = None, context: Context | None = None,
               coupon_reference: np.ndarray | None = None) -> Distribution:
    """Explore around business-as-usual: each block keeps BAU with 1 - cold_epsilon and spreads the rest.

    BAU is the plan as the team would send it: a user whose BAU weekday is taken keeps the moved schedule
    (`bau_schedule`), not an even spread over the free days. Given the users' `context`, half of the hour
    block's exploration, and a further `PolicyConfig.cold_hour_habit` of it taken from the BAU hour, go to the
    hours each user is usually active (`PolicyConfig.cold_hour_width`; users without habits keep the BAU hour and
    an even spread); the other blocks spread their exploration evenly. `coupon_reference` (one coupon index per
    user) centres the coupon block elsewhere than on BAU's coupon (see `ServingPolicy.coupon_reference`).
    """
    n = mask.shape[0]
    e = config.cold_epsilon
    weekday, frequency = bau_schedule(options, mask)
    coupon = options.bau[0] if coupon_reference is None else coupon_reference
    reference = (coupon, options.bau[1], options.bau[2], weekday, frequency)
    q = [_one_hot(n, size, reference[k], e) for k, size in enumerate(options.sizes)]
    if context is not None and config.cold_hour_width is not None:
        k = DIMENSIONS.index("hour")
        weights, known = usual_hour_weights(context, options.space.hours, config.cold_hour_width)
        even = np.full_like(weights, 1.0 / len(options.space.hours))
        habit = config.cold_hour_habit * known[:, None]
        q[k] = _one_hot(n, options.sizes[k], options.bau[k], 0.0) * (1 - e - habit) + habit * weights \
            + e * 0.5 * (weights + even)
    return Distribution(_restrict(q[0], coupon_allowed), q[1], q[2], _schedule(q[3], q[4], mask), "cold_start")


def usual_hour_weights(context: Context, hours: tuple[int, ...], width: float) -> tuple[np.ndarray, np.ndarray]:
    """(users x hours) weights exp(-gap^2 / (2 width^2)) of each hour's gap to the user's usual active hour, rows
    summing to 1, and whether the user has habits at all (rows of users without them are even)."""
    n = len(context) if isinstance(context, pd.DataFrame) else len(next(iter(context.values())))
    gap = np.column_stack([hour_gap(context, np.full(n, float(h))) for h in hours])
    known = np.isfinite(gap).all(axis=1)
    w = np.where(known[:, None], np.exp(-0.5 * (gap / width) ** 2), 1.0)
    return w / w.sum(axis=1, keepdims=True), known


def habit_priors(scores: Scores, options: Options, config: PolicyConfig,
                 context: Context | None) -> dict[str, np.ndarray]:
    """The model policy's priors from the users' habits, per dimension (see `PolicyConfig.weekday_habit` and
    `PolicyConfig.tone_habit`): none without a context or for a head not in log-odds; a row of zeros for a user
    without habits (or without a push history)."""
    if context is None or not scores.is_probability:
        return {}
    if isinstance(context, pd.DataFrame):
        context = habits(context)  # each column read once, not once per weekday and tone
    priors = {}
    if config.weekday_habit:
        n = len(scores.base)
        affinity = np.column_stack([weekday_affinity(context, np.full(n, float(w)))
                                    for w in options.space.weekdays])
        known = np.isfinite(affinity)
        prior = np.log(np.clip(np.where(known, affinity, 1.0), WEEKDAY_AFFINITY_CLIP[0], WEEKDAY_AFFINITY_CLIP[1]))
        priors["weekday"] = config.weekday_habit * prior
    if config.tone_habit:
        tones = [TONES.index(tone) for _, tone in options.space.templates]
        priors["template"] = tone_affinity(context, config.tone_habit)[:, tones]
    return priors


WEEKDAY_AFFINITY_CLIP = (0.05, 5.0)
"""Bounds of the weekday affinity before its log: a user with no weekend sessions at all gets -3 log-odds on
weekends (times `weekday_habit`), not minus infinity; the epsilon floor keeps every day possible."""


def model_policy(scores: Scores, options: Options, mask: np.ndarray, config: PolicyConfig = PolicyConfig(),
                 cost_price: float = 0.0, expected_cost: np.ndarray | None = None,
                 coupon_allowed: np.ndarray | None = None, context: Context | None = None,
                 coupon_reference: np.ndarray | None = None) -> Distribution:
    """Softmax of the model's additive scores per block, priced coupons, epsilon floor, eligibility applied.

    BAU options get `bau_prior` on top of their score; given the users' `context`, the weekday block also gets
    the habit prior (`habit_priors`). A dimension the model has no opinion on for a user (all its options score
    the same: no tree uses it yet) and no prior either keeps the cold-start block: exploring around BAU, not
    uniformly, until data says something about it; a silent coupon block explores around `coupon_reference`
    (one index per user) when it is given, as in `cold_start`.
    """
    weekday, frequency = bau_schedule(options, mask)
    reference = {"weekday": weekday, "frequency": frequency, "coupon": coupon_reference}
    priors = habit_priors(scores, options, config, context)
    q = {d: block(scores, options, d, config, cost_price if d == "coupon" else 0.0,
                  expected_cost if d == "coupon" else None, reference.get(d), priors.get(d)) for d in DIMENSIONS}
    return Distribution(_restrict(q["coupon"], coupon_allowed), q["template"], q["hour"],
                        _schedule(q["weekday"], q["frequency"], mask), "bandit")


def bau_plan(options: Options, mask: np.ndarray,
             coupon_allowed: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The business-as-usual plan of each user, moved as the CRM team would when the platform's limits require.

    A schedule that collides with another push or exceeds the user's capacity moves to the next allowed weekday
    of the campaign (same frequency), then to lower frequencies; a coupon the budget no longer allows becomes 0.
    Deterministic: its propensity is 1. Users with no allowed schedule get -1 (they are not eligible today).
    """
    n = mask.shape[0]
    idx = options.reference(n)
    idx["weekday"], idx["frequency"] = moved_schedule(options, mask)
    if coupon_allowed is not None:
        no_coupon = ~coupon_allowed[np.arange(n), idx["coupon"]]
        zero = [i for i, v in enumerate(options.space.coupon_values) if v == 0]
        idx["coupon"] = np.where(no_coupon, zero[0] if zero else -1, idx["coupon"])
    return idx


def moved_schedule(options: Options, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per user, the weekday and frequency indices of the BAU schedule moved to the next allowed weekday (same
    frequency), then to lower frequencies, then to higher ones; -1 where no schedule is allowed."""
    n, n_w, n_f = mask.shape
    order = [((options.bau[3] + k) % n_w, f) for f in range(options.bau[4], -1, -1) for k in range(n_w)]
    order += [((options.bau[3] + k) % n_w, f) for f in range(options.bau[4] + 1, n_f) for k in range(n_w)]
    chosen_w = np.full(n, -1)
    chosen_f = np.full(n, -1)
    for w, f in order:
        take = (chosen_w < 0) & mask[:, w, f]
        chosen_w[take], chosen_f[take] = w, f
    return chosen_w, chosen_f


def bau_schedule(options: Options, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The BAU weekday and frequency the exploring policies centre on, per user: the schedule BAU would send
    (`moved_schedule`), or the campaign's own where no schedule is allowed.

    About half of a country's decisions find the BAU weekday taken by another campaign's push. Centring on the
    campaign's own weekday there left those users an even spread over the free days (the taken option's weight
    renormalized away), which cost cold start 0.4 pp of open rate against BAU in the 28-day run's first week
    (oracle, MLA); the moved schedule is what the team would have sent instead. Used by `cold_start` and by the
    cold blocks of `model_policy`.
    """
    weekday, frequency = moved_schedule(options, mask)
    none = weekday < 0
    return np.where(none, options.bau[3], weekday), np.where(none, options.bau[4], frequency)


def eligible(mask: np.ndarray) -> np.ndarray:
    """Users with at least one allowed schedule: the same rule for every group, so groups stay comparable."""
    return mask.reshape(mask.shape[0], -1).any(axis=1)


def free_days_from_schedule(user_ids: np.ndarray, scheduled: pd.DataFrame, date: dt.date) -> np.ndarray:
    """(users x 7) booleans: days date..date+6 with no push already scheduled for the user.

    `scheduled` has `user_id` and `send_date` of pushes planned by earlier decisions (any campaign).
    """
    free = np.ones((len(user_ids), PLAN_DAYS), dtype=bool)
    if not len(scheduled):
        return free
    offsets = (pd.to_datetime(scheduled["send_date"]) - pd.Timestamp(date)).dt.days.to_numpy()
    keep = (offsets >= 0) & (offsets < PLAN_DAYS)
    pos = pd.Index(np.asarray(user_ids, dtype=np.int64)).get_indexer(scheduled["user_id"].to_numpy(np.int64)[keep])
    ok = pos >= 0
    free[pos[ok], offsets[keep][ok]] = False
    return free
