"""Ground truth for a day's decisions, from the World (simulation only): what each plan is worth, and the best.

At decision time (before the World simulates the plans' days) the oracle values every chosen plan on its
campaign's objective: the open rate, P(conversion), or the *incremental* net revenue against sending nothing.
The pushes the user's earlier plans still have queued count against every plan compared (they tire the user);
the decision's own queued pushes, named by its trace id, are the plan being valued and do not.
The best plan of each decision is found by coordinate ascent over the five dimensions (two rounds, starting from
the chosen plan): exact optimization over thousands of joint plans per user would cost far more, and the
World's responses are close to additive across dimensions, so this finds the optimum or comes very near it.
Regret = best - chosen. Holdout decisions have no plan: their value is 0 (nothing sent, nothing caused).

The search costs about 70 World evaluations per decision against 2 for the chosen and the BAU plan, so it runs on
a fixed-size sample of each day's decisions (`search_sample`, drawn by a stable hash of the user and the date);
`best` is missing elsewhere, and regret is a sample mean: with 2,000 decisions a country-day its standard error
is far below the differences the report shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pushgrowth.bandit.features import DIMENSIONS
from pushgrowth.bandit.policy import Options
from pushgrowth.campaigns import Catalog
from pushgrowth.hashing import unit_hash
from pushgrowth.sim import World

METRIC = {"open": "open_rate", "conversion": "p_conversion", "net_revenue": "incremental_net_revenue"}
ORACLE_COLUMNS = ["trace_id", "country", "date", "user_id", "campaign_id", "group", "objective", "value", "best",
                  "bau_value", "incremental_net_revenue", "open_rate"]


def _indices(rows: pd.DataFrame, options: Options) -> dict[str, np.ndarray]:
    s = options.space
    return {
        "coupon": pd.Index(list(s.coupon_values)).get_indexer(rows["coupon_value"].astype(float)),
        "template": pd.Index([t for t, _ in s.templates]).get_indexer(rows["template_id"]),
        "hour": pd.Index(list(s.hours)).get_indexer(rows["send_hour"].astype(int)),
        "weekday": pd.Index(list(s.weekdays)).get_indexer(rows["send_weekday"].astype(int)),
        "frequency": pd.Index(list(s.frequencies)).get_indexer(rows["frequency"].astype(int)),
    }


SEARCH_SAMPLE = 2_000
"""Decisions per call whose best plan is searched (None: all)."""


@dataclass(frozen=True)
class _Block:
    """The decisions of one campaign as the World call needs them: users, cost shares and trace ids (arrays,
    one per row), the campaign's options, and one option index per row and dimension."""

    users: np.ndarray
    share: np.ndarray
    traces: np.ndarray | None
    options: Options
    idx: dict[str, np.ndarray]

    @classmethod
    def of(cls, rows: pd.DataFrame, options: Options, idx: dict[str, np.ndarray]) -> _Block:
        return cls(rows["user_id"].to_numpy(np.int64), rows["cost_share"].to_numpy(np.float64),
                   rows["trace_id"].to_numpy(object) if "trace_id" in rows.columns else None, options, idx)

    def __len__(self) -> int:
        return len(self.users)

    def with_plans(self, idx: dict[str, np.ndarray], take: np.ndarray | None = None) -> _Block:
        """The same campaign with other plans: `take` picks (and may repeat) rows, `idx` gives their plans."""
        if take is None:
            return _Block(self.users, self.share, self.traces, self.options, idx)
        return _Block(self.users[take], self.share[take], None if self.traces is None else self.traces[take],
                      self.options, idx)


def oracle_values(world: World, country: str, decisions: pd.DataFrame, catalog: Catalog, rounds: int = 2,
                  search_sample: int | None = SEARCH_SAMPLE) -> pd.DataFrame:
    """One row per decision with its oracle value, the BAU plan's value, and (on the search sample) the best."""
    planned = decisions[decisions["frequency"].notna() & (decisions["group"] != "holdout")].reset_index(drop=True)
    planned["cost_share"] = planned["campaign_id"].map({c.id: c.coupon.cost_share for c in catalog.campaigns})
    searched = np.ones(len(planned), dtype=bool)
    if search_sample is not None and len(planned) > search_sample:
        point = unit_hash(planned["user_id"].to_numpy(np.int64), f"oracle|{planned['date'].min()}")
        point = point + np.arange(len(planned)) * 1e-15  # a user's several decisions stay distinct
        searched = point <= np.partition(point, search_sample - 1)[search_sample - 1]
    planned["searched"] = searched
    parts = []
    frames, blocks = [], []
    for cid, rows in planned.groupby("campaign_id", sort=True):
        options = Options.of_campaign(catalog.get(cid))
        idx = _indices(rows, options)
        ok = np.all([v >= 0 for v in idx.values()], axis=0)
        rows = rows[ok].reset_index(drop=True)
        frames.append(rows)
        blocks.append(_Block.of(rows, options, {d: v[ok] for d, v in idx.items()}))
    metrics = [METRIC_OF(r) for r in frames]
    chosen = _evaluate(world, country, blocks)
    bau = _evaluate(world, country, [b.with_plans(b.options.reference(len(b))) for b in blocks])
    masks = [r["searched"].to_numpy() for r in frames]
    sampled = [b.with_plans({d: v[m] for d, v in b.idx.items()}, np.flatnonzero(m))
               for b, m in zip(blocks, masks, strict=True)]
    best_idx = [dict(b.idx) for b in sampled]
    best = [c[metric].to_numpy()[m] if len(c) else np.zeros(0)
            for c, metric, m in zip(chosen, metrics, masks, strict=True)]
    for _ in range(rounds):
        for k, d in enumerate(DIMENSIONS):
            candidates = []
            for b, current in zip(sampled, best_idx, strict=True):
                n, size = len(b), b.options.sizes[k]
                grid = {dd: np.repeat(v, size) for dd, v in current.items()}
                grid[d] = np.tile(np.arange(size), n)
                candidates.append(b.with_plans(grid, np.repeat(np.arange(n), size)))
            values = _evaluate(world, country, candidates)
            for j, (b, frame) in enumerate(zip(sampled, values, strict=True)):
                if not len(b):
                    continue
                size = b.options.sizes[k]
                v = frame[metrics[j]].to_numpy().reshape(len(b), size)
                pick = v.argmax(axis=1)
                improve = v[np.arange(len(b)), pick] > best[j] + 1e-12
                best_idx[j][d] = np.where(improve, pick, best_idx[j][d])
                best[j] = np.maximum(best[j], v[np.arange(len(b)), pick])
    for r, metric, c, b, bv, m in zip(frames, metrics, chosen, bau, best, masks, strict=True):
        full = np.full(len(r), np.nan)
        full[m] = np.maximum(bv, c[metric].to_numpy()[m])
        parts.append(r[["trace_id", "country", "date", "user_id", "campaign_id", "group", "objective"]].assign(
            value=c[metric].to_numpy(), best=full, bau_value=b[metric].to_numpy(),
            incremental_net_revenue=c["incremental_net_revenue"].to_numpy(), open_rate=c["open_rate"].to_numpy()))
    holdout = decisions[decisions["group"] == "holdout"]
    if len(holdout):
        parts.append(holdout[["trace_id", "country", "date", "user_id", "campaign_id", "group", "objective"]].assign(
            value=0.0, best=np.nan, bau_value=np.nan, incremental_net_revenue=0.0, open_rate=np.nan))
    return pd.concat(parts, ignore_index=True)[ORACLE_COLUMNS] if parts else pd.DataFrame(columns=ORACLE_COLUMNS)


def METRIC_OF(rows: pd.DataFrame) -> str:  # noqa: N802 - reads like the constant it looks up
    """The oracle column of the rows' objective (rows of one campaign share it)."""
    return METRIC[rows["objective"].iloc[0]]


def _evaluate(world: World, country: str, blocks: list[_Block]) -> list[pd.DataFrame]:
    """Oracle outcomes of many campaign blocks in a single World call (one frame per block, in order)."""
    if not blocks:
        return []
    columns = [b.options.action_columns(b.idx) for b in blocks]
    actions = pd.DataFrame({name: np.concatenate([c[name] for c in columns]) for name in columns[0]})
    users = np.concatenate([b.users for b in blocks])
    share = np.concatenate([b.share for b in blocks])
    traces = (np.concatenate([b.traces for b in blocks]) if all(b.traces is not None for b in blocks) else None)
    out = world.oracle(country, users, actions, cost_share=share, trace_ids=traces)
    sizes = np.cumsum([0] + [len(b) for b in blocks])
    return [out.iloc[a:b].reset_index(drop=True) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
