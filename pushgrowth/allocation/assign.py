"""One country's decisions for one day: who gets which campaign, in which group, with which plan, and why.

Order of work, each step the same for every group so that holdout, BAU and bandit stay comparable:
1. Eligibility (from the `audiences` mart and the pushes of earlier plans): a user can take a new plan if some
   schedule of the campaign lands every push on a day without another push and keeps every 7-day window around
   the plan within the country's weekly cap and the campaign's (`allocation.windows`); the plan's own week also
   stays within the cap minus the pushes of the last seven days (`weekly_pushes_left`).
2. One campaign per user and day: the eligible campaign with the highest expected margin of its BAU plan
   (P(conversion) x take rate x the user's order value - expected coupon cost, from the champion's heads), or,
   before a model can say, a stable random pick. `campaign_pick` and `campaign_value` log how.
3. The group, by a stable hash of (user, campaign, the catalog's salt) with the campaign's shares.
4. The plan: nothing for holdout; the BAU plan (moved to a free day when needed) for BAU; a draw from the
   serving policy, with its exact propensity, for the bandit. Budget pacing (see `pacing`) prices or thins
   coupons so that each group's spend follows its even pace, and caps the bandit's draws at what is left of the
   month (`pacing.cap_draws`).
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pushgrowth.allocation import windows
from pushgrowth.allocation.groups import assign_groups
from pushgrowth.hashing import unit_hash
from pushgrowth.allocation.pacing import BudgetState, cap_draws, price_for_target, thin_coupons
from pushgrowth.bandit.policy import (
    Distribution,
    Options,
    Scores,
    bau_plan,
    eligible,
    free_days_from_schedule,
    schedule_mask,
)
from pushgrowth.bandit.features import expected_discount
from pushgrowth.bandit.serving import TAKE_RATE, ServingPolicy
from pushgrowth.campaigns import Campaign, Catalog
from pushgrowth.domain import PLAN_DAYS
from pushgrowth.plans import expand_plans, trace_ids

PLAN_COLUMNS = ["date", "trace_id", "user_id", "campaign_id", "group", "send_weekday", "frequency"]
"""The columns of earlier decisions that `scheduled_pushes` reads."""
MAX_PRICE = 1e9
"""The coupon price used when no finite price meets the target: only exploration's share of coupons is left."""
DECISION_COLUMNS = [
    "trace_id", "country", "date", "user_id", "campaign_id", "group", "objective", "value_proposition",
    "coupon_kind", "coupon_value", "coupon_cap", "template_id", "tone", "send_hour", "send_weekday", "frequency",
    "propensity", "policy", "model_name", "model_version", "expected_reward", "expected_cost", "cost_price",
    "coupons_allowed", "free_days", "capacity", "window_room", "campaign_value", "campaign_pick", "candidates",
    "share_bandit",
    "catalog_version",
]


@dataclass
class DayInputs:
    date: dt.date
    """The decision date: plans start on it; the data is of the day before."""
    country: str
    catalog: Catalog
    audiences: pd.DataFrame
    context: pd.DataFrame
    scheduled: pd.DataFrame
    """Pushes of earlier plans from six days before `date` on (`scheduled_pushes` with `since`): `user_id`,
    `send_date` and `campaign_id` (without it, they count for the country's cap only)."""
    budgets: dict[tuple[str, str], BudgetState]
    policy: ServingPolicy


@dataclass
class Assignment:
    decisions: pd.DataFrame
    pacing: pd.DataFrame
    campaigns: dict[str, Campaign] = field(default_factory=dict)


def scheduled_pushes(previous: pd.DataFrame, date: dt.date, since: dt.date | None = None) -> pd.DataFrame:
    """(user_id, campaign_id, send_date) of the pushes of earlier plans (`previous` decisions) sent on `since`
    (default `date`) or later: the ones still in flight, and with an earlier `since` those already sent."""
    if previous is None or not len(previous):
        return pd.DataFrame({"user_id": pd.Series(dtype="int64"), "campaign_id": pd.Series(dtype="string"),
                             "send_date": pd.Series(dtype="datetime64[s]")})
    plans = previous[previous["frequency"].notna() & (previous["group"] != "holdout")]
    out = []
    for plan_date, rows in plans.groupby("date"):
        d = pd.Timestamp(plan_date).date()
        pushes = expand_plans(rows[["trace_id", "user_id", "campaign_id", "send_weekday", "frequency"]]
                              .astype({"send_weekday": "int64", "frequency": "int64"}).reset_index(drop=True), d)
        out.append(pushes[["user_id", "campaign_id", "send_date"]])
    pushes = pd.concat(out, ignore_index=True) if out else scheduled_pushes(None, date)
    return pushes[pushes["send_date"] >= pd.Timestamp(since or date)].reset_index(drop=True)


def _rng(date: dt.date, country: str, campaign_id: str) -> np.random.Generator:
    return np.random.default_rng(
        [date.toordinal(), zlib.crc32(country.encode()), zlib.crc32(campaign_id.encode())])


def assign(inputs: DayInputs) -> Assignment:
    """Every decision of the day (one row per user picked for a campaign) and the pacing state per campaign."""
    date, country, catalog, policy = inputs.date, inputs.country, inputs.catalog, inputs.policy
    campaigns = {c.id: c for c in catalog.active(date, country) if c.channel == "push"}
    audiences = inputs.audiences[inputs.audiences["campaign_id"].isin(campaigns)]
    context = inputs.context.drop_duplicates("user_id").set_index("user_id", drop=False)
    audiences = audiences[audiences["user_id"].isin(context.index)]
    users = np.sort(audiences["user_id"].unique().astype(np.int64))
    cap = catalog.policies[country].max_weekly_pushes
    free = free_days_from_schedule(users, inputs.scheduled, date)
    left = audiences.groupby("user_id")["weekly_pushes_left"].min().reindex(users).to_numpy(np.int64)
    country_room = windows.window_room(windows.pushes_by_offset(users, inputs.scheduled, date), cap)
    country_room[:, windows.WEEK] = np.minimum(country_room[:, windows.WEEK], np.clip(left, 0, None))
    position = pd.Index(users)
    room = {cid: _campaign_room(campaigns[cid], rows, inputs.scheduled, date, country_room, position)
            for cid, rows in audiences.groupby("campaign_id", sort=True)}

    # 1-2: eligibility and one campaign per user
    candidates = []
    for cid, rows in audiences.groupby("campaign_id", sort=True):
        c = campaigns[cid]
        uid = np.sort(rows["user_id"].to_numpy(np.int64))
        pos = position.get_indexer(uid)
        options = Options.of_campaign(c)
        ok = eligible(schedule_mask(free[pos], room[cid].loc[uid].to_numpy(), options.space, date))
        if ok.any():
            value, how, cost = _campaign_value(policy, c, options, context.loc[uid[ok]])
            candidates.append(pd.DataFrame({"user_id": uid[ok], "campaign_id": cid, "campaign_value": value,
                                            "campaign_pick": how, "bau_cost": cost}))
    if not candidates:
        return Assignment(pd.DataFrame(columns=DECISION_COLUMNS), pd.DataFrame(), campaigns)
    pairs = pd.concat(candidates, ignore_index=True)
    pairs["candidates"] = pairs.groupby("user_id")["campaign_id"].transform("size")
    picked = pick_campaigns(pairs, campaign_capacity(pairs, campaigns, inputs.budgets))

    # 3-4: groups and plans, campaign by campaign
    frames, pacing = [], []
    for cid, rows in picked.groupby("campaign_id", sort=True):
        c = campaigns[cid]
        rows = rows.sort_values("user_id").reset_index(drop=True)
        pos = position.get_indexer(rows["user_id"].to_numpy(np.int64))
        frame, paced = _decide_campaign(inputs, c, rows, context.loc[rows["user_id"]].reset_index(drop=True),
                                        free[pos], room[cid].loc[rows["user_id"]].to_numpy())
        frames.append(frame)
        pacing.extend(paced)
    decisions = pd.concat(frames, ignore_index=True)
    decisions["catalog_version"] = catalog.version
    return Assignment(decisions[DECISION_COLUMNS], pd.DataFrame(pacing), campaigns)


def _campaign_room(c: Campaign, rows: pd.DataFrame, scheduled: pd.DataFrame, date: dt.date,
                   country_room: np.ndarray, position: pd.Index) -> pd.DataFrame:
    """(users of the campaign's audience x 13) room, indexed by user: the smaller, window by window, of the
    country's room and the campaign's weekly cap minus the campaign's own pushes (pushes without a campaign id
    count for the country only)."""
    uid = np.unique(rows["user_id"].to_numpy(np.int64))
    own = scheduled[scheduled["campaign_id"] == c.id] if "campaign_id" in scheduled.columns else scheduled.iloc[:0]
    room = np.minimum(country_room[position.get_indexer(uid)],
                      windows.window_room(windows.pushes_by_offset(uid, own, date), c.frequency.weekly_cap))
    return pd.DataFrame(room, index=uid)


def campaign_capacity(pairs: pd.DataFrame, campaigns: dict[str, Campaign],
                      budgets: dict[tuple[str, str], BudgetState]) -> dict[str, float]:
    """Users each campaign can take today: unlimited with a coupon-free option, else what the day's budget of its
    treated groups pays for at the expected cost of its BAU coupon (holdout users cost nothing)."""
    out = {}
    for cid, rows in pairs.groupby("campaign_id"):
        c = campaigns[cid]
        if 0 in c.coupon.values:
            out[cid] = np.inf
            continue
        target = sum(budgets[(cid, g)].target for g in ("bau", "bandit") if (cid, g) in budgets)
        per_user = float(rows["bau_cost"].mean()) * (c.shares.bau + c.shares.bandit)
        out[cid] = np.floor(target / per_user) if per_user > 0 else np.inf
    return out


def pick_campaigns(pairs: pd.DataFrame, capacity: dict[str, float]) -> pd.DataFrame:
    """One campaign per user: the most valuable one that still has room (greedy, in rounds).

    Each round, every user proposes to their best remaining campaign; a campaign takes the most valuable proposals
    up to its remaining capacity; refused users try their next campaign in the next round. Users nobody can take
    get no decision today. Capacity is the same for every group, so the choice stays independent of the group.
    """
    pending = pairs.sort_values(["user_id", "campaign_value", "campaign_id"], ascending=[True, False, True])
    room = {cid: capacity.get(cid, np.inf) for cid in pending["campaign_id"].unique()}
    taken = []
    while len(pending):
        best = pending.drop_duplicates("user_id")
        rank = best.groupby("campaign_id")["campaign_value"].rank(method="first", ascending=False)
        accept = rank.to_numpy() <= best["campaign_id"].map(room).to_numpy()
        took = best[accept]
        taken.append(took)
        for cid, n in took["campaign_id"].value_counts().items():
            room[cid] -= n
        refused = best[~accept]
        pending = pending[~pending["user_id"].isin(took["user_id"])]
        gone = refused.set_index(["user_id", "campaign_id"]).index
        pending = pending[~pending.set_index(["user_id", "campaign_id"]).index.isin(gone)]
    return pd.concat(taken, ignore_index=True) if taken else pairs.iloc[:0]


def _campaign_value(policy: ServingPolicy, c: Campaign, options: Options, context: pd.DataFrame
                    ) -> tuple[np.ndarray, str, np.ndarray]:
    """Per user: the campaign's value (expected margin of its BAU plan, or a stable random draw before the model
    can say), how it was valued, and the expected cost of its BAU coupon."""
    model = policy.model
    if model is None or not (model.has("conversion") and model.has("redemption")):
        ctx = context.reset_index(drop=True)
        cost = policy.expected_cost(ctx, options, c.coupon.cost_share)[:, options.bau[0]]
        return unit_hash(context["user_id"].to_numpy(), f"pick|{c.id}"), "random", cost
    ctx = context.assign(value_proposition=c.value_proposition).reset_index(drop=True)
    bau = options.actions(options.reference(len(ctx)))
    pred = model.predict(ctx, bau)
    order_value = model.spec.order_value(ctx)
    discount = expected_discount(bau["coupon_kind"].to_numpy(object), bau["coupon_value"].to_numpy(np.float64),
                                 bau["coupon_cap"].to_numpy(np.float64), order_value)
    cost = pred["redemption"].to_numpy() * discount * c.coupon.cost_share
    return pred["conversion"].to_numpy() * TAKE_RATE * order_value - cost, "expected_margin", cost


def _decide_campaign(inputs: DayInputs, c: Campaign, rows: pd.DataFrame, context: pd.DataFrame,
                     free: np.ndarray, room: np.ndarray) -> tuple[pd.DataFrame, list[dict]]:
    policy, date = inputs.policy, inputs.date
    options = Options.of_campaign(c)
    values = np.asarray(options.space.coupon_values)
    n = len(rows)
    user_ids = rows["user_id"].to_numpy(np.int64)
    groups = assign_groups(user_ids, c.id, c.shares.holdout, c.shares.bau, c.shares.salt)
    mask = schedule_mask(free, room, options.space, date)
    cost = policy.expected_cost(context, options, c.coupon.cost_share)
    out = pd.DataFrame({
        "trace_id": trace_ids(date, inputs.country, pd.Series([c.id] * n), rows["user_id"]),
        "country": inputs.country, "date": date, "user_id": user_ids, "campaign_id": c.id, "group": groups,
        "objective": c.objective, "value_proposition": c.value_proposition,
        "free_days": (free * (1 << np.arange(PLAN_DAYS))).sum(axis=1).astype(np.int32),
        "capacity": room[:, windows.WEEK].astype(np.int32), "window_room": windows.encode_room(room),
        "campaign_value": rows["campaign_value"].to_numpy(),
        "campaign_pick": rows["campaign_pick"].to_numpy(), "candidates": rows["candidates"].to_numpy(np.int32),
        "share_bandit": c.shares.bandit,
        "propensity": 1.0, "policy": groups, "cost_price": 0.0, "expected_cost": 0.0, "coupons_allowed": True,
        "model_name": None, "model_version": None, "expected_reward": np.nan,
    })
    head = policy.head(c.objective)
    scores = policy.scores(head, context, options, c.objective) if head else None
    idx = {d: np.full(n, -1) for d in ("coupon", "template", "hour", "weekday", "frequency")}
    paced = []

    bau = np.flatnonzero(groups == "bau")
    if len(bau):
        plan = bau_plan(options, mask[bau])
        state = inputs.budgets[(c.id, "bau")]
        plan_cost = cost[bau, plan["coupon"]]
        keep = thin_coupons(plan_cost, state.target, unit_hash(user_ids[bau], f"coupon-order|{date}|{c.id}"))
        zero = np.flatnonzero(values == 0)
        no_push = np.zeros(len(bau), bool)
        if (~keep).any():
            if len(zero):
                plan["coupon"] = np.where(keep, plan["coupon"], zero[0])
            else:
                no_push = ~keep
        for d in idx:
            idx[d][bau] = np.where(no_push, -1, plan[d])
        out.loc[bau[no_push], "policy"] = "budget_exhausted"
        out.loc[bau, "coupons_allowed"] = keep
        paced.append({**state.to_dict(), "price": 0.0, "users": len(bau),
                      "coupons_kept": int((keep & (plan_cost > 0)).sum()),
                      "projected_spend": float(cost[bau, idx["coupon"][bau].clip(0)][~no_push].sum())})

    bandit = np.flatnonzero(groups == "bandit")
    if len(bandit):
        state = inputs.budgets[(c.id, "bandit")]
        dist, price, allowed = _paced_distribution(inputs, c, options,
                                                   scores.subset(bandit) if scores is not None else None,
                                                   mask[bandit], cost[bandit], state, user_ids[bandit],
                                                   context.iloc[bandit].reset_index(drop=True))
        drawn, propensity = dist.sample(_rng(date, inputs.country, c.id))
        bandit_cost = cost[bandit]
        keep = cap_draws(bandit_cost[np.arange(len(bandit)), drawn["coupon"]],
                         np.where(dist.coupon > 0, bandit_cost, 0.0).max(axis=1), state.remaining,
                         unit_hash(user_ids[bandit], f"coupon-order|{date}|{c.id}"))
        if not keep.all():  # the draws would spend more than is left: later users draw again without coupons
            allowed = allowed & np.where(keep[:, None], True, values[None, :] == 0)
            dist.restrict_coupons(allowed)
            drawn, propensity = dist.sample(_rng(date, inputs.country, c.id))  # the same uniforms
        sendable = allowed.any(axis=1) & eligible(mask[bandit])
        for d in idx:
            idx[d][bandit] = np.where(sendable, drawn[d], -1)
        out.loc[bandit, "propensity"] = np.where(sendable, propensity, 1.0)
        out.loc[bandit, "policy"] = np.where(sendable, dist.policy, "budget_exhausted")
        out.loc[bandit, "cost_price"] = price if np.isfinite(price) else MAX_PRICE
        out.loc[bandit, "coupons_allowed"] = allowed.all(axis=1)
        if policy.model_version and scores is not None:
            out.loc[bandit, "model_name"] = policy.model_name
            out.loc[bandit, "model_version"] = policy.model_version
        spend = (dist.coupon * cost[bandit]).sum(axis=1)
        paced.append({**state.to_dict(), "price": float(price) if np.isfinite(price) else None,
                      "users": len(bandit), "coupons_kept": int((values[drawn["coupon"]] > 0).sum()),
                      "projected_spend": float(spend[sendable].sum())})

    sent = idx["coupon"] >= 0
    actions = options.actions({d: np.where(sent, v, 0) for d, v in idx.items()})
    for column in ("coupon_kind", "coupon_value", "coupon_cap", "template_id", "tone", "send_hour", "send_weekday",
                   "frequency"):
        out[column] = actions[column].where(sent, None)
    out.loc[sent, "expected_cost"] = cost[np.flatnonzero(sent), idx["coupon"][sent]]
    if scores is not None and sent.any():
        out.loc[sent, "expected_reward"] = scores.subset(sent).value({d: v[sent] for d, v in idx.items()})
    return out, [{**p, "campaign_id": c.id} for p in paced]


def _paced_distribution(inputs: DayInputs, c: Campaign, options: Options, scores: Scores | None,
                        mask: np.ndarray, cost: np.ndarray, state: BudgetState, user_ids: np.ndarray,
                        context: pd.DataFrame) -> tuple[Distribution, float, np.ndarray]:
    """The bandit's distribution with coupons priced to the group's daily target (see `pacing`).

    Returns the distribution, the price (`inf` when coupons had to be thinned) and the allowed coupons per user.
    """
    policy = inputs.policy
    values = np.asarray(options.space.coupon_values)
    allowed = np.ones((mask.shape[0], len(values)), dtype=bool)
    price = 0.0
    reference = policy.coupon_reference(c.objective, context, options)
    if scores is not None:
        price = price_for_target(lambda p: policy.coupon_spend(scores, options, p, cost, reference), state.target,
                                 max_price=MAX_PRICE)
        price = price if np.isfinite(price) else MAX_PRICE
    dist, _ = policy.distribution(c.objective, context, options, mask, cost_price=price, expected_cost=cost,
                                  scores=scores, reference=reference)
    if float((dist.coupon * cost).sum()) <= state.target + 1e-9:
        return dist, price, allowed
    # even the highest price (or cold start) spends too much: coupons for a stable random share of users only
    per_user = (dist.coupon * cost).sum(axis=1)
    keep = thin_coupons(per_user, state.target, unit_hash(user_ids, f"coupon-order|{inputs.date}|{c.id}"))
    allowed = np.where(keep[:, None], True, values[None, :] == 0)
    dist.restrict_coupons(allowed)
    return dist, price if scores is not None else np.inf, allowed
