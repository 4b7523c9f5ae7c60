"""Pre-activation rules for one campaign: what the schema cannot know, checked against the company policy.

Each rule is a small generator of (field path, message) pairs, so every rule reports all of its findings and a
campaign's problems are listed together; rules that compare campaigns (duplicate ids, frequency caps across
campaigns) are in `overlap.py`. The README section on the catalog lists these rules in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from itertools import product

from pushgrowth.campaigns.country_policy import CountryPolicy
from pushgrowth.campaigns.problems import FieldPath
from pushgrowth.campaigns.wording import (
    PARAM_PLACEHOLDERS,
    PLACEHOLDERS,
    TemplateSyntaxError,
    fill,
    format_coupon,
    format_money,
    placeholder_values,
    placeholders,
)
from pushgrowth.campaigns.schema import Campaign
from pushgrowth.domain import CATEGORIES, COUNTRIES

Finding = tuple[FieldPath, str]
Rule = Callable[[Campaign, CountryPolicy], Iterator[Finding]]
SHARE_TOLERANCE = 1e-6


def coupon_cost(campaign: Campaign, value: float, policy: CountryPolicy) -> float:
    """Expected cost to the marketplace of one redemption: a percent coupon is costed on the policy's
    reference order value, capped at its `max_discount`; the marketplace pays `cost_share` of it."""
    if campaign.coupon.kind == "none" or value <= 0:
        return 0.0
    if campaign.coupon.kind == "percent":
        cap = campaign.coupon.max_discount or math.inf
        discount = min(value / 100.0 * policy.reference_order_value, cap)
    else:
        discount = value
    return discount * campaign.coupon.cost_share


def _duplicates(path: FieldPath, items: list) -> Iterator[Finding]:
    seen: set = set()
    for i, item in enumerate(items):
        if item in seen:
            yield (*path, i), f"{item!r} is listed twice"
        seen.add(item)


def channel_supported(c: Campaign, p: CountryPolicy) -> Iterator[Finding]:
    if c.channel != "push" and c.schedule.status != "draft":
        yield ("channel",), (f"channel {c.channel!r} is not yet supported: only push campaigns can be "
                             f"{c.schedule.status}; keep it as a draft until the channel ships")


def audience_consistent(c: Campaign, p: CountryPolicy) -> Iterator[Finding]:
    a = c.audience
    regions = [r.code for r in COUNTRIES[c.country].regions]
    for i, region in enumerate(a.regions or []):
        if region not in regions:
            yield ("audience", "regions", i), (f"unknown region {region!r} for {c.country}; "
                                               f"expected one of: {', '.join(regions)}")
    for name in ("segments", "platforms", "regions", "categories"):
        yield from _duplicates(("audience", name), getattr(a, name) or [])
    lo, hi = a.min_days_since_last_order, a.max_days_since_last_order
    if lo is not None and hi is not None and lo > hi:
        yield ("audience", "min_days_since_last_order"), (
            f"min_days_since_last_order ({lo}) is above max_days_since_last_order ({hi}): nobody is eligible")


def coupon_within_policy(c: Campaign, p: CountryPolicy) -> Iterator[Finding]:
    coupon, currency = c.coupon, c.currency
    yield from _duplicates(("coupon", "values"), coupon.values)
    if coupon.kind == "none":
        for i, value in enumerate(coupon.values):
            if value != 0:
                yield ("coupon", "values", i), f"a coupon of kind none can only offer 0, not {value:g}"
    elif not any(v > 0 for v in coupon.values):
        yield ("coupon", "values"), f"a {coupon.kind} coupon needs at least one value above 0"
    for i, value in enumerate(coupon.values):
        if coupon.kind == "amount" and value > p.max_coupon_amount:
            yield ("coupon", "values", i), (
                f"{format_money(value, currency)} is above the {c.country} policy maximum of "
                f"{format_money(p.max_coupon_amount, currency)} per coupon")
        if coupon.kind == "percent" and value > p.max_coupon_percent:
            yield ("coupon", "values", i), (
                f"{value:g}% is above the {c.country} policy maximum of {p.max_coupon_percent:g}%")
    if coupon.kind == "percent":
        if coupon.max_discount is None:
            yield ("coupon", "max_discount"), "a percent coupon needs max_discount (its cap in local currency)"
        elif coupon.max_discount > p.max_coupon_amount:
            yield ("coupon", "max_discount"), (
                f"cap {format_money(coupon.max_discount, currency)} is above the {c.country} policy maximum of "
                f"{format_money(p.max_coupon_amount, currency)} per coupon")
    elif coupon.max_discount is not None:
        yield ("coupon", "max_discount"), f"max_discount only applies to percent coupons, not {coupon.kind}"


def _worst_renderings(c: Campaign, p: CountryPolicy, text: str) -> tuple[int, str]:
    """The longest rendering of `text` over the campaign's coupons and the categories its users may have."""
    uses = set(placeholders(text))
    coupons = [v for v in c.coupon.values if v > 0] if "coupon" in uses else [c.coupon.values[0]]
    categories = (c.audience.categories or list(CATEGORIES)) if "category" in uses else [CATEGORIES[0]]
    longest = ""
    for value, category in product(coupons or [0.0], categories):
        rendered = fill(text, placeholder_values(c, value, p.sample_first_name, category))
        if len(rendered) > len(longest):
            longest = rendered
    return len(longest), longest


def templates_renderable(c: Campaign, p: CountryPolicy) -> Iterator[Finding]:
    seen: set[str] = set()
    for i, tpl in enumerate(c.templates):
        if tpl.id in seen:
            yield ("templates", i, "id"), f"duplicate template id {tpl.id!r}"
        seen.add(tpl.id)
    zero_arm = c.coupon.kind == "none" or 0 in c.coupon.values
    for i, tpl in enumerate(c.templates):
        for part, limit in (("title", p.max_title_chars), ("body", p.max_body_chars)):
            text, path = getattr(tpl, part), ("templates", i, part)
            try:
                names = placeholders(text)
            except TemplateSyntaxError as exc:
                yield path, str(exc)
                continue
            unknown = [n for n in names if n not in PLACEHOLDERS]
            for name in unknown:
                yield path, (f"unknown placeholder {{{name}}}; "
                             f"allowed: {', '.join('{' + n + '}' for n in PLACEHOLDERS)}")
            missing = [n for n in names if n in PARAM_PLACEHOLDERS and getattr(c.params, n) is None]
            for name in missing:
                yield path, f"uses {{{name}}} but params.{name} is not set"
            if "coupon" in names and zero_arm:
                yield path, ("uses {coupon} but the campaign can send no coupon (kind none or a 0 on the "
                             "ladder); word it without {coupon}, or drop 0 from coupon.values")
            if unknown or missing or ("coupon" in names and zero_arm):
                continue
            length, longest = _worst_renderings(c, p, text)
            if length > limit:
                yield path, (f"renders to {length} characters, above the {limit} a push {part} may have: "
                             f"{longest!r}")


def send_window_open(c: Campaign, p: CountryPolicy) -> Iterator[Finding]:
    window, quiet = c.send_window, p.quiet_hours
    yield from _duplicates(("send_window", "hours"), window.hours)
    yield from _duplicates(("send_window", "weekdays"), window.weekdays)
    inside = [i for i, h in enumerate(window.hours) if h in quiet.hours]
    if len(inside) == len(window.hours):
        yield ("send_window", "hours"), (f"the send window is empty after {c.country}'s quiet hours ({quiet}): "
                                         f"every hour in {window.hours} is quiet")
        return
    for i in inside:
        yield ("send_window", "hours", i), (f"hour {window.hours[i]} falls in {c.country}'s quiet hours "
                                            f"({quiet}); no push is sent then, remove it")


def frequency_capped(c: Campaign, p: CountryPolicy) -> Iterator[Finding]:
    freq = c.frequency
    yield from _duplicates(("frequency", "options"), freq.options)
    for i, option in enumerate(freq.options):
        if option > freq.weekly_cap:
            yield ("frequency", "options", i), (
                f"{option} pushes a week is above the campaign's own weekly_cap of {freq.weekly_cap}")
    if freq.weekly_cap > p.max_weekly_pushes:
        yield ("frequency", "weekly_cap"), (
            f"weekly_cap {freq.weekly_cap} is above {c.country}'s cap of {p.max_weekly_pushes} marketing pushes "
            f"per user per week across all campaigns")


def budget_sufficient(c: Campaign, p: CountryPolicy) -> Iterator[Finding]:
    budget, currency = c.budget, c.currency
    if budget.currency != currency:
        yield ("budget", "currency"), f"{c.country} budgets are in {currency}, not {budget.currency}"
        return
    costs = [(coupon_cost(c, v, p), v) for v in c.coupon.values if coupon_cost(c, v, p) > 0]
    if not costs:
        return
    cost, value = min(costs)
    need = p.min_daily_redemptions * cost
    if budget.monthly < need:
        shown = format_coupon(c.coupon.kind, value, currency)
        yield ("budget", "monthly"), (
            f"{format_money(budget.monthly, currency)} a month cannot cover one minimal day: "
            f"{p.min_daily_redemptions} redemptions x {format_money(cost, currency)} (the smallest coupon, "
            f"{shown}, x cost share {c.coupon.cost_share:g}) = {format_money(need, currency)}")


def schedule_ordered(c: Campaign, p: CountryPolicy) -> Iterator[Finding]:
    s = c.schedule
    if s.end is not None and s.end < s.start:
        yield ("schedule", "end"), f"end {s.end} is before start {s.start}"


def shares_sum_to_one(c: Campaign, p: CountryPolicy) -> Iterator[Finding]:
    s = c.shares
    total = s.holdout + s.bau + s.bandit
    if abs(total - 1.0) > SHARE_TOLERANCE:
        yield ("shares",), f"holdout + bau + bandit = {total:.4g}; the shares must sum to 1"
    if s.holdout < p.min_holdout_share:
        yield ("shares", "holdout"), (f"holdout {s.holdout:g} is below the minimum of {p.min_holdout_share:g}: "
                                      f"without it the campaign's lift cannot be measured")


def bau_within_options(c: Campaign, p: CountryPolicy) -> Iterator[Finding]:
    bau, ids = c.bau, [t.id for t in c.templates]
    if bau.coupon not in c.coupon.values:
        ladder = [float(v) for v in c.coupon.values]
        yield ("bau", "coupon"), f"{bau.coupon:g} is not on the coupon ladder {ladder}"
    if bau.template not in ids:
        yield ("bau", "template"), f"unknown template {bau.template!r}; the campaign has {', '.join(ids)}"
    if bau.hour not in c.send_window.hours:
        yield ("bau", "hour"), f"hour {bau.hour} is not in send_window.hours {c.send_window.hours}"
    if bau.weekday not in c.send_window.weekdays:
        yield ("bau", "weekday"), f"{bau.weekday!r} is not in send_window.weekdays {c.send_window.weekdays}"
    if bau.frequency not in c.frequency.options:
        yield ("bau", "frequency"), f"{bau.frequency} is not in frequency.options {c.frequency.options}"


RULES: tuple[Rule, ...] = (
    channel_supported, audience_consistent, coupon_within_policy, templates_renderable, send_window_open,
    frequency_capped, budget_sufficient, schedule_ordered, shares_sum_to_one, bau_within_options,
)
"""Every single-campaign rule, in the order their problems are reported."""


def check_campaign(campaign: Campaign, policy: CountryPolicy) -> list[Finding]:
    """All findings of every rule for one campaign whose shape is already valid."""
    return [finding for rule in RULES for finding in rule(campaign, policy)]
