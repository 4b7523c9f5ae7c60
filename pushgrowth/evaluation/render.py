"""The evaluation summary (`evaluation.summary`, a JSON-serializable dict) as something people read.

Three outputs, each for a different reader:

- `render_html`: one self-contained HTML file (the report in ``reports/``). It must open from a laptop, a CI
  artifact or an air-gapped machine, so nothing is fetched: no CDN, no external CSS or JavaScript, plots embedded
  as base64 ``data:`` URIs.
- `plot_files`: the same plots as PNG files, for asset metadata and for pasting into a deck.
- `render_markdown`: a few KB of Markdown for Dagster's asset metadata (the UI shows it inline), so the headline
  verdicts and the group tables only; no images.

Why verdicts are sentences with their numbers
    "Does the bandit beat BAU?" is answered by an interval, not by a point estimate. Each headline therefore
    states both rates, the difference, its 95% CI and whether the interval lies above zero (✓ only when
    ``ci_low > 0``); a reader who sees ✗ also sees whether the interval straddles zero or lies below it.

Why rendering never raises on the data
    The summary is assembled from whatever the lake holds: a country with no decisions yet, a comparison the
    statistics could not estimate (NaN, serialized as null), a run without the simulation's oracle, a report
    without the pooled section. Every value is therefore read defensively: a missing or non-numeric value shows as
    "–" and a plot without data is skipped (it is absent from `plot_files`' result and from the HTML). Only a
    summary that is not a mapping at all is a caller bug (TypeError).

Why plots use matplotlib's object API instead of pyplot
    `Figure` with an explicit Agg canvas never touches pyplot's global state: no backend switch at import (the
    Dagster process may use matplotlib elsewhere), no display needed, nothing to close (pyplot keeps every figure
    alive until ``plt.close``; a `Figure` alone is garbage-collected like any object), and no shared state
    between threads of the Dagster run worker.

Why a verdict that fails says what the experiment could detect
    An interval that includes zero means "no difference larger than about 2.8 standard errors", not "no
    difference". A ✗ verdict therefore adds the comparison's minimum detectable effect at 80% power and, in
    simulation, the difference the oracle expects, the power to show it and the multiple of the decisions that
    would (`summary.sensitivity`, computed by `stats.sensitivity`); the sensitivity table has them for every
    comparison.

Units: rates are shown as percentages with one decimal, differences of rates in percentage points, money with
two decimals and the currency code (the country's local currency; USD for the pooled section); an interval of
money narrower than +-0.02 gets the decimals that show its width (e.g. -0.0065 USD, 95% CI -0.0164 to
+0.0034). Regret and oracle values are normalized (1.0 = the best plan for every user, see
`summary.oracle_summary`), shown with three decimals.
"""

from __future__ import annotations

import base64
import io
import math
import numbers
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["plot_files", "render_html", "render_markdown", "sensitivity_note", "underpowered_note"]

GROUP_ORDER = ("holdout", "bau", "bandit")
GROUP_LABEL = {"holdout": "holdout", "bau": "BAU", "bandit": "bandit"}
DASH = "–"
FIGSIZE = (6.0, 3.5)
DPI = 100
COLORS = {"bau": "#7f7f7f", "bandit": "#1f77b4", "difference": "#2ca02c"}
MAX_CAMPAIGN_ROWS = 30
"""Campaign rows per country in the HTML report (the busiest by decisions); the full list stays in the JSON."""
MARKDOWN_BUDGET = 4000
"""Characters of Markdown to aim for: Dagster shows it inline, so campaign rows are shed first to fit."""
POOLED = "pooled"


# --------------------------------------------------------------------------------------------------------------
# Reading the summary defensively
# --------------------------------------------------------------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    """`value` if it is a mapping, else an empty one (a null or malformed part reads as absent)."""
    return value if isinstance(value, Mapping) else {}


def _rows(value: Any) -> list[Mapping[str, Any]]:
    """The mapping entries of a list (anything else, including null, reads as no rows)."""
    if not isinstance(value, (list, tuple)):
        return []
    return [row for row in value if isinstance(row, Mapping)]


def _get(value: Any, *keys: str) -> Any:
    """`value[k1][k2]...`, or None as soon as a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _num(value: Any) -> float | None:
    """A finite number as float, else None (null, NaN, inf, strings and booleans are all "no value")."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    return DASH if value is None or value == "" else str(value)


@dataclass(frozen=True)
class _Interval:
    """An estimate and its 95% CI as read from the summary; any part may be None."""

    estimate: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, value: Any) -> _Interval:
        v = _map(value)
        return cls(_num(v.get("estimate")), _num(v.get("ci_low")), _num(v.get("ci_high")))

    @property
    def has_ci(self) -> bool:
        return self.low is not None and self.high is not None


# --------------------------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------------------------


def _fixed(x: float | None, digits: int, *, signed: bool = False, thousands: bool = False) -> str:
    """`x` with `digits` decimals; a value that rounds to zero is +0.0, never the confusing -0.0."""
    if x is None:
        return DASH
    x = round(x, digits) or 0.0
    return format(x, ("+" if signed else "") + ("," if thousands else "") + f".{digits}f")


def _count(x: Any) -> str:
    n = _num(x)
    return DASH if n is None else f"{round(n):,}"


def _pct(x: Any, *, signed: bool = False) -> str:
    n = _num(x)
    return DASH if n is None else _fixed(n * 100, 1, signed=signed) + "%"


def _pp(x: float | None) -> str:
    return DASH if x is None else _fixed(x * 100, 1, signed=True) + " pp"


def _money(x: Any, currency: str | None, *, signed: bool = False, digits: int = 2) -> str:
    n = _num(x)
    if n is None:
        return DASH
    return _fixed(n, digits, signed=signed, thousands=True) + (f" {currency}" if currency else "")


def _money_digits(interval: _Interval) -> int:
    """Decimals for money with this interval: 2, or (when its half-width is under 0.02) 4, or more for a
    half-width under 0.001: a pooled difference of a few tenths of a US cent would read +0.00 to +0.01."""
    if not interval.has_ci:
        return 2
    assert interval.low is not None and interval.high is not None
    half = (interval.high - interval.low) / 2
    if not half > 0 or round(half, 2) >= 0.02:
        return 2
    return min(6, max(4, 1 - math.floor(math.log10(half))))


def _norm(x: Any) -> str:
    """A normalized oracle quantity (regret, value)."""
    n = _num(x)
    return DASH if n is None else _fixed(n, 3)


def _ratio(x: Any) -> str:
    n = _num(x)
    return DASH if n is None else _fixed(n, 2) + "×"


def _ci(interval: _Interval, bound: Callable[[float], str]) -> str:
    """"(95% CI +1.1 to +2.1)", with the bounds formatted like the estimate but without its unit."""
    if not interval.has_ci:
        return f"(95% CI {DASH})"
    assert interval.low is not None and interval.high is not None
    return f"(95% CI {bound(interval.low)} to {bound(interval.high)})"


def _pp_bound(x: float) -> str:
    return _fixed(x * 100, 1, signed=True)


def _money_bound(x: float, digits: int = 2) -> str:
    return _fixed(x, digits, signed=True, thousands=True)


def _money_ci(interval: _Interval, currency: str | None) -> str:
    """"+0.04 USD (95% CI -0.01 to +0.09)", with `_money_digits` decimals."""
    digits = _money_digits(interval)
    return (f"{_money(interval.estimate, currency, signed=True, digits=digits)} "
            f"{_ci(interval, lambda x: _money_bound(x, digits))}")


def _currency(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --------------------------------------------------------------------------------------------------------------
# Verdicts: the headline sentences shared by the HTML and the Markdown
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One headline: the sentence with its numbers, and whether it is good news (None: cannot tell)."""

    text: str
    ok: bool | None
    note: str

    @property
    def mark(self) -> str:
        return {True: "✓", False: "✗", None: DASH}[self.ok]

    @property
    def css(self) -> str:
        return {True: "ok", False: "bad", None: "na"}[self.ok]

    @property
    def line(self) -> str:
        return f"{self.text} {self.mark} {self.note}"


def _zero_verdict(text: str, interval: _Interval) -> Verdict:
    """✓ when the whole interval is above zero; ✗ says whether it straddles zero or lies below it."""
    if not interval.has_ci:
        return Verdict(text, None, "no interval")
    assert interval.low is not None and interval.high is not None
    if interval.low > 0:
        return Verdict(text, True, "above zero")
    if interval.high < 0:
        return Verdict(text, False, "below zero")
    return Verdict(text, False, "includes zero")


def sensitivity_note(sensitivity: Any, fmt: Callable[[float], str]) -> str:
    """"; detectable from +0.0142 USD (80% power); the oracle expects +0.0055: power 19%, 6.5× the decisions
    for 80%", or "" without an MDE. `fmt` formats a signed difference in the comparison's unit."""
    s = _map(sensitivity)
    mde = _num(s.get("mde"))
    if mde is None:
        return ""
    target = _num(s.get("power_target"))
    text = f"; detectable from {fmt(mde)} ({_pct_int(target)} power)"
    expected = _num(s.get("expected"))
    if expected is not None:
        text += f"; the oracle expects {fmt(expected)}: power {_pct_int(_num(s.get('power')))}"
        multiple = _num(s.get("decisions_multiple"))
        if multiple is not None and multiple > 1:
            text += f", {_fixed(multiple, 1)}× the decisions for {_pct_int(target)}"
        elif multiple is None and expected <= 0:
            text += ", not detectable at any size"
    return text


UNDERPOWERED = 0.5
"""A ✓ whose comparison had less power than this to show the oracle's expected difference gets
`underpowered_note`: at that power, the draws that clear zero are mostly the lucky ones."""


def underpowered_note(sensitivity: Any, fmt: Callable[[float], str]) -> str:
    """"; the oracle expects +0.0073 USD: power 30%, so an estimate shown above zero overstates it 1.8× on
    average", or "" when the power is unknown or at least `UNDERPOWERED`. For a verdict above zero: the
    difference is real in the oracle's eyes, its size is not what the interval says."""
    s = _map(sensitivity)
    power, expected, ratio = _num(s.get("power")), _num(s.get("expected")), _num(s.get("exaggeration"))
    if power is None or expected is None or power >= UNDERPOWERED:
        return ""
    text = f"; the oracle expects {fmt(expected)}: power {_pct_int(power)}"
    if ratio is not None:
        text += f", so an estimate shown above zero overstates it {_fixed(ratio, 1)}× on average"
    return text


def _pct_int(x: float | None) -> str:
    return DASH if x is None else f"{round(x * 100):d}%"


def _with_sensitivity(verdict: Verdict, sensitivity: Any, fmt: Callable[[float], str]) -> Verdict:
    """The verdict with `sensitivity_note` appended when it is not good news, and with `underpowered_note` when it
    is but the comparison was too weak to trust its size."""
    if verdict.ok is None:
        return verdict
    note = underpowered_note(sensitivity, fmt) if verdict.ok else sensitivity_note(sensitivity, fmt)
    return Verdict(verdict.text + note, verdict.ok, verdict.note)


def _open_rate_verdict(country: Mapping[str, Any]) -> Verdict:
    groups = _map(country.get("groups"))
    lift = _Interval.of(_get(country, "lift_bandit_vs_bau", "open_rate"))
    text = (f"bandit open rate {_pct(_get(groups, 'bandit', 'open_rate'))} vs BAU "
            f"{_pct(_get(groups, 'bau', 'open_rate'))}; within campaigns {_pp(lift.estimate)} {_ci(lift, _pp_bound)}")
    return _with_sensitivity(_zero_verdict(text, lift), _get(country, "sensitivity", "open_rate"), _pp)


def _revenue_verdict(country: Mapping[str, Any], currency: str | None) -> Verdict:
    groups = _map(country.get("groups"))
    lift = _Interval.of(_get(country, "lift_bandit_vs_bau", "net_revenue_per_user"))
    bandit = _money(_get(groups, "bandit", "net_revenue_per_user"), currency)
    bau = _money(_get(groups, "bau", "net_revenue_per_user"), currency)
    text = f"bandit net revenue per user {bandit} vs BAU {bau}; within campaigns {_money_ci(lift, currency)}"
    digits = _money_digits(lift)
    return _with_sensitivity(_zero_verdict(text, lift), _get(country, "sensitivity", "net_revenue_per_user"),
                             lambda x: _money(x, currency, signed=True, digits=digits))


def _ate_verdict(group: str, interval: _Interval, currency: str | None, pooled: bool = False) -> Verdict:
    what = "pooled ATE" if pooled else "ATE"
    text = f"{GROUP_LABEL[group]} vs holdout ({what}, net revenue per user): {_money_ci(interval, currency)}"
    return _zero_verdict(text, interval)


def _series(rows: Sequence[Mapping[str, Any]], key: str) -> list[tuple[str, float]]:
    """(week label, value) of the rows where `key` has a value, in week order."""
    out = []
    for i, row in enumerate(rows):
        value = _num(row.get(key))
        if value is not None:
            out.append((_week_label(row, i), value))
    return out


def _regret_verdict(country: Mapping[str, Any]) -> Verdict | None:
    """Did the bandit's regret (oracle) shrink from its first week to its last? None without an oracle."""
    oracle = country.get("oracle")
    if not isinstance(oracle, Mapping):
        return None
    rows = _week_rows(oracle.get("regret_per_week"))
    bandit, bau = _series(rows, "bandit"), _series(rows, "bau")
    if len(bandit) < 2:
        return Verdict("bandit regret (oracle): fewer than two weeks with data", None, "cannot tell yet")
    (w0, r0), (w1, r1) = bandit[0], bandit[-1]
    change = f" ({_fixed((r1 - r0) / r0 * 100, 0, signed=True)}%)" if r0 > 0 else ""
    text = f"bandit regret (oracle) {_norm(r0)} in week {w0} → {_norm(r1)} in week {w1}{change}"
    if len(bau) >= 2:
        text += f"; BAU {_norm(bau[0][1])} → {_norm(bau[-1][1])}"
    return Verdict(text, r1 < r0, "shrank" if r1 < r0 else "did not shrink")


def country_verdicts(country: Mapping[str, Any]) -> list[Verdict]:
    """The headlines of one country: bandit vs BAU (open rate, net revenue), both ATEs, and the regret trend."""
    currency = _currency(country.get("currency"))
    ate = _map(country.get("ate_vs_holdout"))
    verdicts = [_open_rate_verdict(country), _revenue_verdict(country, currency),
                _ate_verdict("bau", _Interval.of(ate.get("bau")), currency),
                _ate_verdict("bandit", _Interval.of(ate.get("bandit")), currency)]
    regret = _regret_verdict(country)
    return verdicts + ([regret] if regret is not None else [])


def pooled_verdicts(pooled: Mapping[str, Any]) -> list[Verdict]:
    """The pooled headlines (USD): both ATEs vs holdout and the bandit-minus-BAU difference."""
    if not pooled:
        return []
    currency = _currency(pooled.get("currency")) or "USD"
    ate = _map(pooled.get("ate_vs_holdout"))
    difference = _Interval.of(pooled.get("difference_bandit_minus_bau"))
    digits = _money_digits(difference)
    verdict = _zero_verdict(f"bandit minus BAU (pooled, net revenue per user): {_money_ci(difference, currency)}",
                            difference)
    return [_ate_verdict("bau", _Interval.of(ate.get("bau")), currency, pooled=True),
            _ate_verdict("bandit", _Interval.of(ate.get("bandit")), currency, pooled=True),
            _with_sensitivity(verdict, _get(pooled, "sensitivity", "difference_bandit_minus_bau"),
                              lambda x: _money(x, currency, signed=True, digits=digits))]


# --------------------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Table:
    """A table as preformatted strings; `numeric` right-aligns a column."""

    caption: str
    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    note: str = ""


def _ordered_groups(groups: Mapping[str, Any]) -> list[str]:
    known = [g for g in GROUP_ORDER if isinstance(groups.get(g), Mapping)]
    return known + [g for g, v in groups.items() if g not in GROUP_ORDER and isinstance(v, Mapping)]


def group_table(groups: Mapping[str, Any], currency: str | None, *, compact: bool = False,
                caption: str = "Groups", note: str = "") -> Table | None:
    """One row per group. `compact` (Markdown) keeps the six columns the headline needs."""
    names = _ordered_groups(groups)
    if not names:
        return None
    columns: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
        ("decisions", lambda g: _count(g.get("decisions"))),
        ("users", lambda g: _count(g.get("users"))),
        ("sends", lambda g: _count(g.get("sends"))),
        ("opens", lambda g: _count(g.get("opens"))),
        ("open rate", lambda g: _pct(g.get("open_rate"))),
        ("mature decisions", lambda g: _count(g.get("mature_decisions"))),
        ("conversions", lambda g: _count(g.get("conversions"))),
        ("conversion rate", lambda g: _pct(g.get("conversion_rate"))),
        ("net revenue per user", lambda g: _money(g.get("net_revenue_per_user"), currency)),
    ]
    if compact:
        keep = {"decisions", "sends", "opens", "open rate", "conversions", "net revenue per user"}
        columns = [c for c in columns if c[0] in keep]
    rows = [[GROUP_LABEL.get(name, name)] + [fmt(_map(groups[name])) for _, fmt in columns] for name in names]
    return Table(caption, ["group"] + [c[0] for c in columns], rows, [False] + [True] * len(columns), note)


def _sum(values: list[float | None]) -> float | None:
    """The sum, or None if any part is unknown: a partial total would look complete."""
    return None if any(v is None for v in values) else float(sum(v for v in values if v is not None))


def pooled_groups(summary: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """Group totals over countries; net revenue per user in USD, weighted by each country's mature decisions.

    Empty for a single country's report without a pooled section (nothing to pool).

    Counts add across countries; the open rate is recomputed as opens / sends (a per-push rate, as in each
    country). Money needs the reporting rates of ``pooled.fx_usd_per_unit``: without a rate for a country that
    contributes, the pooled net revenue is unknown rather than silently missing that country.
    """
    countries = _map(summary.get("countries"))
    fx = _map(_get(summary, POOLED, "fx_usd_per_unit"))
    contributing = [c for c in countries.values() if _map(_get(c, "groups"))]
    if len(contributing) < 2 and not _map(summary.get(POOLED)):
        return {}  # one country's report: its own table says it all
    out: dict[str, dict[str, float | None]] = {}
    for name in GROUP_ORDER:
        parts = [(code, _map(_get(c, "groups", name))) for code, c in countries.items()
                 if isinstance(_get(c, "groups", name), Mapping)]
        if not parts:
            continue
        totals = {k: _sum([_num(g.get(k)) for _, g in parts])
                  for k in ("decisions", "users", "sends", "opens", "mature_decisions", "conversions")}
        sends, opens, mature = totals["sends"], totals["opens"], totals["mature_decisions"]
        revenue: float | None = None
        weighted = [(_num(g.get("net_revenue_per_user")), _num(g.get("mature_decisions")), _num(fx.get(code)))
                    for code, g in parts if (_num(g.get("mature_decisions")) or 0) > 0]
        if weighted and mature and all(v is not None and w is not None and r is not None for v, w, r in weighted):
            revenue = sum(v * w * r for v, w, r in weighted if v is not None and w is not None and r is not None)
            revenue /= mature
        out[name] = {**totals, "open_rate": opens / sends if sends and opens is not None else None,
                     "conversion_rate": totals["conversions"] / mature
                     if mature and totals["conversions"] is not None else None,
                     "net_revenue_per_user": revenue}
    return out


POOLED_TABLE_NOTE = ("Sums over countries; net revenue per user converted to USD at the fixed reporting rates and "
                     "weighted by mature decisions. A descriptive mean: the ATEs above are taken within country, "
                     "campaign and bandit share.")


def _week_rows(value: Any) -> list[Mapping[str, Any]]:
    """Weekly rows sorted by week number (rows without one keep their order at the end)."""
    rows = _rows(value)
    return sorted(rows, key=lambda r: (_num(r.get("week")) is None, _num(r.get("week")) or 0.0))


def _week_label(row: Mapping[str, Any], i: int) -> str:
    week = _num(row.get("week"))
    return str(int(week)) if week is not None else str(i + 1)


def weekly_table(country: Mapping[str, Any]) -> Table | None:
    rows = _week_rows(country.get("by_week"))
    if not rows:
        return None
    return Table("Open rate by week",
                 ["week", "start", "BAU sends", "BAU open rate", "bandit sends", "bandit open rate"],
                 [[_week_label(r, i), _text(r.get("start")), _count(r.get("bau_sends")),
                   _pct(r.get("bau_open_rate")), _count(r.get("bandit_sends")), _pct(r.get("bandit_open_rate"))]
                  for i, r in enumerate(rows)],
                 [False, False, True, True, True, True])


def _interval_cell(value: Any, estimate: Callable[[float | None], str], bound: Callable[[float], str]) -> str:
    interval = _Interval.of(value)
    verdict = _zero_verdict("", interval)
    return f"{estimate(interval.estimate)} {_ci(interval, bound)} {verdict.mark}"


def share_table(country: Mapping[str, Any], currency: str | None) -> Table | None:
    """Bandit vs BAU per bandit share: the rollout from a pilot share of each campaign towards 100%."""
    rows = sorted(_rows(country.get("by_bandit_share")),
                  key=lambda r: (_num(r.get("bandit_share")) is None, _num(r.get("bandit_share")) or 0.0))
    if not rows:
        return None
    return Table("Results per bandit share (rollout)",
                 ["bandit share", "campaigns", "decisions", "open rate lift (bandit − BAU)",
                  "net revenue per user lift (bandit − BAU)"],
                 [[_pct(r.get("bandit_share")), _count(r.get("campaigns")), _count(r.get("decisions")),
                   _interval_cell(r.get("open_rate_lift"), _pp, _pp_bound),
                   _interval_cell(r.get("net_revenue_lift"), lambda x: _money(x, currency, signed=True),
                                  _money_bound)] for r in rows],
                 [True, True, True, True, True], "✓: the 95% CI is above zero.")


def top_campaigns(country: Mapping[str, Any], limit: int) -> list[Mapping[str, Any]]:
    """The (campaign, group) rows with the most decisions; ties keep the summary's order."""
    rows = _rows(country.get("campaigns"))
    return sorted(rows, key=lambda r: -(_num(r.get("decisions")) or 0.0))[:max(limit, 0)]


def campaign_table(country: Mapping[str, Any], currency: str | None, limit: int = MAX_CAMPAIGN_ROWS,
                   compact: bool = False) -> Table | None:
    rows = top_campaigns(country, limit)
    if not rows:
        return None
    total = len(_rows(country.get("campaigns")))
    headers = ["campaign", "group", "decisions", "sends", "open rate", "net revenue per user"]
    body = [[_text(r.get("campaign_id")), GROUP_LABEL.get(str(r.get("group")), _text(r.get("group"))),
             _count(r.get("decisions")), _count(r.get("sends")), _pct(r.get("open_rate")),
             _money(r.get("net_revenue_per_user"), currency)] for r in rows]
    if compact:
        headers, body = headers[:3] + headers[4:], [row[:3] + row[4:] for row in body]
    caption = f"Top campaigns by decisions ({len(rows)} of {total} campaign × group rows)"
    return Table(caption, headers, body, [False, False] + [True] * (len(headers) - 2))


def budget_table(country: Mapping[str, Any], currency: str | None) -> Table | None:
    """The budget ledger rows; optional columns (group, remaining, spent share) only when some row has them.

    The ledger is per campaign, not per group, so the report's rows usually carry no group; an all-"–" column
    would only add noise.
    """
    rows = _rows(country.get("budget"))
    if not rows:
        return None
    columns: list[tuple[str, str, bool, Callable[[Any], str]]] = [
        ("campaign_id", "campaign", False, _text),
        ("group", "group", False, lambda g: GROUP_LABEL.get(str(g), _text(g))),
        ("budget", "budget", True, lambda v: _money(v, currency)),
        ("committed", "committed", True, lambda v: _money(v, currency)),
        ("remaining", "remaining", True, lambda v: _money(v, currency)),
        ("spent_share", "spent", True, _pct),
        ("pace", "pace", True, _pct),
        ("burn_ratio", "burn ratio", True, _ratio),
    ]
    always = {"campaign_id", "budget", "committed", "pace", "burn_ratio"}
    columns = [c for c in columns if c[0] in always or any(r.get(c[0]) is not None for r in rows)]
    return Table("Budget (current month)", [c[1] for c in columns],
                 [[fmt(r.get(key)) for key, _, _, fmt in columns] for r in rows], [c[2] for c in columns],
                 "Spent: share of the budget committed. Pace: share of the month elapsed. "
                 "Burn ratio: spent / pace (above 1 spends faster than an even pace).")


def model_table(country: Mapping[str, Any]) -> Table | None:
    """The serving model and its registry evidence: every scalar of ``models`` (names, counts, OPE estimates)."""
    models = _map(country.get("models"))
    rows = []
    for key, value in models.items():
        number = _num(value)
        if number is not None:
            text = _count(number) if float(number).is_integer() else _fixed(number, 4)
        elif isinstance(value, str) and value:
            text = value
        else:
            continue
        rows.append([str(key).replace("_", " "), text])
    return Table("Serving model", ["", "value"], rows, [False, True]) if rows else None


SENSITIVITY_NOTE = ("Detectable: the smallest true difference whose 95% CI would lie above zero with 80% power "
                    "(2.8 standard errors). Oracle: the difference the chosen plans are worth in the World "
                    "(simulation only); power: the chance to show it above zero; overstated: how much an estimate "
                    "shown above zero exceeds it on average (type M error); decisions: how many (and how many "
                    "times today's) it takes to show it with 80% power, the design unchanged.")


def _or_dash(value: float | None, fmt: Callable[[float], str]) -> str:
    return DASH if value is None else fmt(value)


def sensitivity_table(rows: Sequence[tuple[str, Any, Any, Callable[[float], str]]]) -> Table | None:
    """One row per comparison (label, interval, sensitivity, signed formatter): the estimate, what the experiment
    can detect and, in simulation, what the oracle expects. None when no comparison has a sensitivity."""
    body = []
    for label, interval, sensitivity, fmt in rows:
        s = _map(sensitivity)
        if _num(s.get("mde")) is None:
            continue
        multiple = _num(s.get("decisions_multiple"))
        body.append([label, _or_dash(_Interval.of(interval).estimate, fmt), _or_dash(_num(s.get("mde")), fmt),
                     _or_dash(_num(s.get("expected")), fmt), _pct_int(_num(s.get("power"))),
                     _or_dash(_num(s.get("exaggeration")), lambda r: _fixed(r, 1) + "×"),
                     _or_dash(multiple, lambda m: _fixed(m, 1) + "×"), _count(s.get("decisions_needed"))])
    if not body:
        return None
    return Table("Sensitivity: what the experiment can detect",
                 ["comparison", "estimate", "detectable (80% power)", "oracle expects", "power", "overstated",
                  "decisions multiple", "decisions needed"],
                 body, [False] + [True] * 7, SENSITIVITY_NOTE)


def country_sensitivity_table(country: Mapping[str, Any], currency: str | None) -> Table | None:
    lifts, sensitivity = _map(country.get("lift_bandit_vs_bau")), _map(country.get("sensitivity"))
    digits = _money_digits(_Interval.of(lifts.get("net_revenue_per_user")))
    return sensitivity_table([
        ("open rate, bandit − BAU", lifts.get("open_rate"), sensitivity.get("open_rate"),
         lambda x: _fixed(x * 100, 2, signed=True) + " pp"),
        ("net revenue per user, bandit − BAU", lifts.get("net_revenue_per_user"),
         sensitivity.get("net_revenue_per_user"), lambda x: _money(x, currency, signed=True, digits=digits))])


def pooled_sensitivity_table(pooled: Mapping[str, Any]) -> Table | None:
    currency = _currency(pooled.get("currency")) or "USD"
    difference = pooled.get("difference_bandit_minus_bau")
    digits = _money_digits(_Interval.of(difference))
    return sensitivity_table([("net revenue per user, bandit − BAU (pooled)", difference,
                               _get(pooled, "sensitivity", "difference_bandit_minus_bau"),
                               lambda x: _money(x, currency, signed=True, digits=digits))])


def oracle_tables(country: Mapping[str, Any], currency: str | None) -> list[Table]:
    oracle = country.get("oracle")
    if not isinstance(oracle, Mapping):
        return []
    tables = []
    value, incremental = _map(oracle.get("value")), _map(oracle.get("incremental_net_revenue_per_decision"))
    names = [g for g in GROUP_ORDER if g in value or g in incremental]
    if names:
        tables.append(Table("Oracle value per group",
                            ["group", "value (1.000 = best plan for every user)",
                             "incremental net revenue per decision"],
                            [[GROUP_LABEL[g], _norm(value.get(g)),
                              _money(incremental.get(g), currency, signed=True)] for g in names],
                            [False, True, True]))
    weeks = _week_rows(oracle.get("regret_per_week"))
    if weeks:
        tables.append(Table("Regret by week (oracle; 0 = the best plan)",
                            ["week", "start", "BAU regret", "bandit regret", "BAU value", "bandit value"],
                            [[_week_label(r, i), _text(r.get("start")), _norm(r.get("bau")),
                              _norm(r.get("bandit")), _norm(r.get("bau_value")), _norm(r.get("bandit_value"))]
                             for i, r in enumerate(weeks)],
                            [False, False, True, True, True, True]))
    return tables


# --------------------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plot:
    """A rendered plot: `name` is the file stem (``MLB_open_rate_by_week``), `section` the country or "pooled"."""

    name: str
    section: str
    caption: str
    png: bytes


def _safe(code: str) -> str:
    """A country code usable in a file name (a code is data: it must not reach outside `out_dir`)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", code) or "_"


def _figure(title: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _png(fig: Figure) -> bytes:
    """PNG bytes; no "Software" text chunk, so the same data gives the same bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    fig.clear()
    return buffer.getvalue()


def _weekly_plot(title: str, rows: Sequence[Mapping[str, Any]], series: Sequence[tuple[str, str, str]],
                 ylabel: str, scale: float = 1.0) -> bytes | None:
    """Lines of `series` (key, label, color) per week; None when no series has a single value."""
    if not rows:
        return None
    x = [_num(r.get("week")) if _num(r.get("week")) is not None else float(i + 1) for i, r in enumerate(rows)]
    lines = []
    for key, label, color in series:
        values = [_num(r.get(key)) for r in rows]
        if any(v is not None for v in values):
            lines.append((label, color, [v * scale if v is not None else math.nan for v in values]))
    if not lines:
        return None
    fig, ax = _figure(title)
    for label, color, values in lines:
        ax.plot(x, values, marker="o", label=label, color=color)
    labels = []
    for i, r in enumerate(rows):
        start = r.get("start")
        labels.append(f"W{_week_label(r, i)}" + (f"\n{start[5:10]}" if isinstance(start, str) and len(start) >= 10
                                                 else ""))
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.legend(fontsize=8)
    return _png(fig)


def _interval_plot(title: str, items: Sequence[tuple[str, _Interval, str]], ylabel: str) -> bytes | None:
    """Point estimates with 95% CI error bars and a zero line; None when nothing has an estimate."""
    if all(iv.estimate is None for _, iv, _ in items):
        return None
    fig, ax = _figure(title)
    for i, (_, iv, color) in enumerate(items):
        if iv.estimate is None:
            continue
        yerr = None
        if iv.has_ci:
            assert iv.low is not None and iv.high is not None
            # Clamped: matplotlib rejects negative error lengths, and a summary could hold an estimate
            # outside its own interval (rounding, hand edits); the point is still drawn where it is.
            yerr = [[max(iv.estimate - iv.low, 0.0)], [max(iv.high - iv.estimate, 0.0)]]
        ax.errorbar([i], [iv.estimate], yerr=yerr, fmt="o", capsize=6, color=color, markersize=7)
    ax.axhline(0.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(items)), [label if iv.estimate is not None else f"{label}\n(n/a)"
                                      for label, iv, _ in items], fontsize=9)
    ax.set_xlim(-0.5, len(items) - 0.5)
    ax.set_ylabel(ylabel, fontsize=9)
    return _png(fig)


def country_plots(code: str, country: Mapping[str, Any]) -> list[Plot]:
    """The plots of one country that have data: open rate by week, regret by week, ATEs vs holdout."""
    stem, currency = _safe(code), _currency(country.get("currency"))
    plots = []
    png = _weekly_plot(f"{code}: open rate by week", _week_rows(country.get("by_week")),
                       [("bau_open_rate", "BAU", COLORS["bau"]), ("bandit_open_rate", "bandit", COLORS["bandit"])],
                       "open rate (%)", scale=100.0)
    if png:
        plots.append(Plot(f"{stem}_open_rate_by_week", code, "Open rate per push by week, BAU vs bandit.", png))
    png = _weekly_plot(f"{code}: regret by week (oracle)", _week_rows(_get(country, "oracle", "regret_per_week")),
                       [("bau", "BAU", COLORS["bau"]), ("bandit", "bandit", COLORS["bandit"])],
                       "normalized regret (0 = best)")
    if png:
        plots.append(Plot(f"{stem}_regret_by_week", code,
                          "Regret by week against the oracle's best plan (lower is better).", png))
    ate = _map(country.get("ate_vs_holdout"))
    png = _interval_plot(f"{code}: ATE vs holdout, net revenue per user",
                         [("BAU", _Interval.of(ate.get("bau")), COLORS["bau"]),
                          ("bandit", _Interval.of(ate.get("bandit")), COLORS["bandit"])],
                         f"net revenue per user{f' ({currency})' if currency else ''}")
    if png:
        plots.append(Plot(f"{stem}_ate", code, "Effect of being pushed vs the holdout, with 95% CIs.", png))
    return plots


def pooled_plots(pooled: Mapping[str, Any]) -> list[Plot]:
    """The pooled ATEs (and their difference) with 95% CIs, if the summary has a pooled section."""
    if not pooled:
        return []
    currency = _currency(pooled.get("currency")) or "USD"
    ate = _map(pooled.get("ate_vs_holdout"))
    png = _interval_plot("All countries: effects on net revenue per user (95% CI)",
                         [("BAU", _Interval.of(ate.get("bau")), COLORS["bau"]),
                          ("bandit", _Interval.of(ate.get("bandit")), COLORS["bandit"]),
                          ("bandit − BAU", _Interval.of(pooled.get("difference_bandit_minus_bau")),
                           COLORS["difference"])],
                         f"net revenue per user ({currency})")
    if not png:
        return []
    return [Plot("pooled_ate", POOLED, "Pooled effects vs the holdout and their difference, with 95% CIs.", png)]


def _summary(summary: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if summary is None:
        return {}
    if not isinstance(summary, Mapping):
        raise TypeError(f"summary must be a mapping (the evaluation summary dict), got {type(summary).__name__}")
    return summary


def _countries(summary: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(str(code), _map(country)) for code, country in _map(summary.get("countries")).items()]


def all_plots(summary: Mapping[str, Any]) -> list[Plot]:
    """Every plot of the report that has data: pooled first, then the countries in the summary's order."""
    summary = _summary(summary)
    plots = pooled_plots(_map(summary.get(POOLED)))
    for code, country in _countries(summary):
        plots.extend(country_plots(code, country))
    return plots


def _write(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a reader (the webserver, a browser) never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def plot_files(summary: dict, out_dir: Path) -> dict[str, Path]:
    """Write one PNG per plot with data into `out_dir` (created if needed); return {name: path}.

    Names are ``<COUNTRY>_open_rate_by_week``, ``<COUNTRY>_regret_by_week``, ``<COUNTRY>_ate`` and
    ``pooled_ate``; a plot without data is neither written nor returned. Files of earlier renders that this one
    skipped are left alone (the returned mapping, not the folder listing, is what this render produced).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for plot in all_plots(summary):
        path = out_dir / f"{plot.name}.png"
        _write(path, plot.png)
        written[plot.name] = path
    return written


# --------------------------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------------------------


HTML_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2rem; margin-top: 2.5rem; }
h3 { margin: 1.2rem 0 0.4rem; font-size: 1rem; }
.meta { color: #666; font-size: 0.9rem; margin: 0.2rem 0; }
.warn { background: #fff4e5; border: 1px solid #f0b35b; padding: 0.5rem 1rem; border-radius: 4px; }
nav a { margin-right: 1rem; }
ul.verdicts { list-style: none; padding-left: 0; }
ul.verdicts li { padding: 0.3rem 0.6rem; margin: 0.25rem 0; border-left: 4px solid #bbb; background: #f7f7f7; }
ul.verdicts li.ok { border-color: #2e7d32; } ul.verdicts li.bad { border-color: #c62828; }
.mark { font-weight: bold; } li.ok .mark { color: #2e7d32; } li.bad .mark { color: #c62828; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; }
table { border-collapse: collapse; margin: 0.3rem 0 0.3rem; font-size: 0.85rem; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.5rem; } th { background: #f0f0f0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.note { font-size: 0.8rem; color: #666; margin-top: 0; }
</style>
</head>
<body>
<header>
<h1>{{ title }}</h1>
{% for line in meta %}<p class="meta">{{ line }}</p>
{% endfor %}
{% if failures %}<div class="warn">
<strong>{{ failures | length }} failed run{{ "" if failures | length == 1 else "s" }}</strong>
<ul>
{% for f in failures[:20] %}<li>{{ f }}</li>
{% endfor %}{% if failures | length > 20 %}<li>…</li>{% endif %}
</ul>
</div>
{% endif %}
<nav>{% for s in sections %}<a href="#{{ s.anchor }}">{{ s.heading }}</a>{% endfor %}</nav>
</header>
{% for s in sections %}
<section id="{{ s.anchor }}">
<h2>{{ s.heading }}</h2>
{% for line in s.meta %}<p class="meta">{{ line }}</p>
{% endfor %}
{% if s.verdicts %}<ul class="verdicts">
{% for v in s.verdicts %}<li class="{{ v.css }}">
{{- v.text }} <span class="mark">{{ v.mark }}</span> {{ v.note -}}
</li>
{% endfor %}</ul>{% endif %}
{% if s.plots %}<div class="plots">
{% for p in s.plots %}<figure>
<img src="data:image/png;base64,{{ p.data }}" alt="{{ p.caption }}" width="{{ width }}" height="{{ height }}">
<figcaption>{{ p.caption }}</figcaption>
</figure>
{% endfor %}</div>{% endif %}
{% for t in s.tables %}
<h3>{{ t.caption }}</h3>
<table>
<thead><tr>{% for h in t.headers %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in t.rows %}<tr>
{%- for cell in row %}<td{% if t.numeric[loop.index0] %} class="num"{% endif %}>{{ cell }}</td>{% endfor -%}
</tr>
{% endfor %}</tbody>
</table>
{% if t.note %}<p class="note">{{ t.note }}</p>{% endif %}
{% endfor %}
{% for n in s.notes %}<p class="note">{{ n }}</p>
{% endfor %}
</section>
{% endfor %}
</body>
</html>
"""

_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True), keep_trailing_newline=True)
_TEMPLATE = _ENV.from_string(HTML_TEMPLATE)


@dataclass
class _Section:
    anchor: str
    heading: str
    meta: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    plots: list[dict[str, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _run_meta(summary: Mapping[str, Any]) -> list[str]:
    """The header lines: what was run (seed, period, users, runs) and when the report was made."""
    parts = []
    if summary.get("seed") is not None:
        parts.append(f"seed {summary['seed']}")
    days, start = _num(summary.get("days")), summary.get("start_date")
    if days is not None or start:
        parts.append(f"{_count(days)} days from {_text(start)}")
    if summary.get("runs") is not None:
        parts.append(f"{_count(summary.get('runs'))} Dagster runs")
    if summary.get("as_of"):
        parts.append(f"as of {summary['as_of']}")
    if summary.get("generated_at"):
        parts.append(f"generated {summary['generated_at']}")
    lines = [" · ".join(parts)] if parts else []
    users = _map(summary.get("users"))
    if users:
        lines.append("users: " + ", ".join(f"{code} {_count(n)}" for code, n in users.items()))
    return lines


def _country_meta(code: str, country: Mapping[str, Any], summary: Mapping[str, Any]) -> list[str]:
    parts = [f"{_count(country.get('decisions'))} decisions"]
    if country.get("first_decision") or country.get("last_decision"):
        parts[0] += f" from {_text(country.get('first_decision'))} to {_text(country.get('last_decision'))}"
    currency = _currency(country.get("currency"))
    if currency:
        parts.append(f"money in {currency}")
    users = _num(_get(summary, "users", code))
    if users is not None:
        parts.append(f"{_count(users)} users")
    models = _map(country.get("models"))
    if models:
        promotions, rejections = _num(models.get("promotions")), _num(models.get("rejections"))
        parts.append(f"serving model {_text(models.get('serving_model'))} "
                     f"({_count(promotions)} promotion{'' if promotions == 1 else 's'}, "
                     f"{_count(rejections)} rejection{'' if rejections == 1 else 's'})")
    return [" · ".join(parts)]


def _plot_views(plots: list[Plot], section: str) -> list[dict[str, str]]:
    return [{"caption": p.caption, "data": base64.b64encode(p.png).decode("ascii")}
            for p in plots if p.section == section]


def _sections(summary: Mapping[str, Any], plots: list[Plot]) -> list[_Section]:
    sections = []
    pooled = _map(summary.get(POOLED))
    totals = pooled_groups(summary)
    if pooled or totals:
        section = _Section("pooled", "All countries (pooled, USD)")
        fx = _map(pooled.get("fx_usd_per_unit"))
        if fx:
            section.meta.append("reporting rates (USD per unit of local currency): "
                                + ", ".join(f"{code} {_text(_num(rate))}" for code, rate in fx.items()))
        section.verdicts = pooled_verdicts(pooled)
        section.plots = _plot_views(plots, POOLED)
        tables = [group_table(totals, "USD", caption="Groups, all countries", note=POOLED_TABLE_NOTE),
                  pooled_sensitivity_table(pooled)]
        section.tables = [t for t in tables if t is not None]
        sections.append(section)
    for code, country in _countries(summary):
        currency = _currency(country.get("currency"))
        section = _Section(f"country-{_safe(code)}", code, _country_meta(code, country, summary))
        if not _map(country.get("groups")) and not _num(country.get("decisions")):
            section.notes.append("No decisions yet: nothing to evaluate.")
            sections.append(section)
            continue
        section.verdicts = country_verdicts(country)
        section.plots = _plot_views(plots, code)
        candidates = [group_table(_map(country.get("groups")), currency), country_sensitivity_table(country, currency),
                      share_table(country, currency), weekly_table(country), *oracle_tables(country, currency),
                      campaign_table(country, currency), budget_table(country, currency), model_table(country)]
        section.tables = [t for t in candidates if t is not None]
        if not isinstance(country.get("oracle"), Mapping):
            section.notes.append("No oracle: regret needs the World's ground truth (simulation only).")
        sections.append(section)
    return sections


def render_html(summary: dict, out: Path, title: str = "pushgrowth evaluation") -> Path:
    """Write the self-contained HTML report to `out` (parents created) and return `out`.

    Pooled section first (the answer across countries), then one section per country: headline verdicts (the
    groups' rates as they are, their differences within campaigns, see `stats`), plots
    (embedded PNGs), the group table, results per bandit share, weekly and oracle tables, the busiest campaigns
    and the budget. Nothing in the page refers to the network.
    """
    summary = _summary(summary)
    plots = all_plots(summary)
    failures = summary.get("failures")
    html = _TEMPLATE.render(
        title=title, meta=_run_meta(summary), sections=_sections(summary, plots),
        width=round(FIGSIZE[0] * DPI), height=round(FIGSIZE[1] * DPI),
        failures=[str(f) for f in failures] if isinstance(failures, (list, tuple)) else [])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(out, html.encode("utf-8"))
    return out


# --------------------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    """A GitHub-style pipe table without padding (padding costs characters of the metadata budget)."""
    lines = ["|" + "|".join(_md_cell(h) for h in table.headers) + "|",
             "|" + "|".join("--:" if n else "---" for n in table.numeric) + "|"]
    lines += ["|" + "|".join(_md_cell(c) for c in row) + "|" for row in table.rows]
    return "\n".join(lines)


def _markdown(summary: Mapping[str, Any], campaigns: int) -> str:
    parts = ["## Evaluation"]
    meta = _run_meta(summary)
    if meta:
        parts.append(meta[0])
    failures = summary.get("failures")
    if isinstance(failures, (list, tuple)) and failures:
        parts.append(f"**⚠ {len(failures)} failed run{'' if len(failures) == 1 else 's'}**")
    pooled = _map(summary.get(POOLED))
    totals = pooled_groups(summary)
    if pooled or totals:
        block = ["### All countries (USD)"]
        verdicts = pooled_verdicts(pooled)
        if verdicts:
            block.append("\n".join(f"- {v.line}" for v in verdicts))
        table = group_table(totals, "USD", compact=True)
        if table:
            block.append(markdown_table(table))
        parts.append("\n\n".join(block))
    for code, country in _countries(summary):
        currency = _currency(country.get("currency"))
        decisions = _num(country.get("decisions"))
        block = [f"### {_md_cell(code)}" + (f" ({currency})" if currency else "")
                 + (f" · {_count(decisions)} decisions" if decisions is not None else "")]
        if not _map(country.get("groups")) and not _num(country.get("decisions")):
            block.append("No decisions yet.")
            parts.append("\n\n".join(block))
            continue
        block.append("\n".join(f"- {v.line}" for v in country_verdicts(country)))
        table = group_table(_map(country.get("groups")), currency, compact=True)
        if table:
            block.append(markdown_table(table))
        table = campaign_table(country, currency, campaigns, compact=True) if campaigns > 0 else None
        if table:
            block += [f"Top {len(table.rows)} campaigns by decisions:", markdown_table(table)]
        parts.append("\n\n".join(block))
    return "\n\n".join(parts) + "\n"


def render_markdown(summary: dict, max_campaigns: int = 10) -> str:
    """Compact Markdown for Dagster's asset metadata: run line, verdicts and group tables, pooled and per country.

    Up to `max_campaigns` busiest campaign rows per country are added while the text stays within
    `MARKDOWN_BUDGET` characters: the campaign rows are halved until it fits, then dropped with a pointer to the
    HTML report. The verdicts and group tables are never cut (they are the point), so a summary of many
    countries may exceed the budget.
    """
    summary = _summary(summary)
    n = max(int(max_campaigns), 0)
    while True:
        text = _markdown(summary, n)
        if len(text) <= MARKDOWN_BUDGET or n == 0:
            break
        n //= 2
    if n == 0 < max_campaigns and any(_rows(c.get("campaigns")) for _, c in _countries(summary)):
        text += "\nCampaign tables omitted to keep this summary short: see the HTML report.\n"
    return text
