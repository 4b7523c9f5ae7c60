"""Rules across campaigns: duplicate ids, file countries, and weekly caps of campaigns that compete for users.

Overlap, concretely: two or more campaigns *overlap* when they are active push campaigns of the same country
with the same value proposition, their schedules share a day, and one user can be eligible for all of them at
once (a common lifecycle segment, and compatible platform, region, category interest, Mercado Pago status and
days since the last order). Overlapping campaigns must keep the sum of their `frequency.weekly_cap` within the
country's `max_weekly_pushes`. Allocation still enforces the country cap per user across *all* campaigns at send
time; this rule catches catalogs where same-message campaigns alone would already break it, which almost always
means two campaigns should be merged or their audiences split.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import product
from typing import Any

from pushgrowth.campaigns.country_policy import CountryPolicy
from pushgrowth.campaigns.problems import Entry, Problem
from pushgrowth.campaigns.schema import Campaign
from pushgrowth.domain import CATEGORIES, COUNTRIES, LIFECYCLE_SEGMENTS, PLATFORMS

Cell = dict[str, Any]


def duplicate_ids(entries: Sequence[Entry]) -> list[Problem]:
    """Every occurrence of an id defined more than once, in any file, names the other places."""
    places: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        if not entry.ref.startswith("campaigns["):
            places[entry.ref].append(entry)
    problems = []
    for same in places.values():
        if len(same) < 2:
            continue
        for entry in same:
            others = ", ".join(f"{o.file} (line {o.problem(('id',), '').line})" for o in same if o is not entry)
            problems.append(entry.problem(("id",), f"duplicate campaign id; also defined in {others}"))
    return problems


def file_countries(entries: Sequence[Entry]) -> list[Problem]:
    """A file that declares `country:` holds only campaigns of that country."""
    problems = []
    for entry in entries:
        if entry.file_country is None:
            continue
        country = entry.campaign.country if entry.campaign else (
            entry.raw.get("country") if isinstance(entry.raw, dict) else None)
        if isinstance(country, str) and country != entry.file_country:
            problems.append(entry.problem(("country",), f"campaign country {country} is not the file's country "
                                                        f"{entry.file_country}"))
    return problems


def _accepts(c: Campaign, cell: Cell) -> bool:
    a = c.audience
    lo, hi = a.min_days_since_last_order or 0, a.max_days_since_last_order
    return (cell["segment"] in a.segments
            and (cell["platform"] is None or a.platforms is None or cell["platform"] in a.platforms)
            and (cell["region"] is None or a.regions is None or cell["region"] in a.regions)
            and (cell["category"] is None or a.categories is None or cell["category"] in a.categories)
            and (cell["mp_user"] is None or a.mp_user is None or cell["mp_user"] == a.mp_user)
            and lo <= cell["days"] and (hi is None or cell["days"] <= hi))


def _cells(country: str, campaigns: Sequence[Campaign]) -> Iterable[Cell]:
    """Representative users: one per combination of the profile values any of `campaigns` restricts.

    For days since the last order it is enough to try each campaign's lower bound (and 0): where a set of
    ranges intersects, the intersection starts at one of them.
    """
    def dim(values: Sequence[Any], used: bool) -> Sequence[Any]:
        return values if used else (None,)

    audiences = [c.audience for c in campaigns]
    platforms = dim(PLATFORMS, any(a.platforms for a in audiences))
    regions = dim([r.code for r in COUNTRIES[country].regions], any(a.regions for a in audiences))
    categories = dim(CATEGORIES, any(a.categories for a in audiences))
    mp = dim((True, False), any(a.mp_user is not None for a in audiences))
    days = sorted({0, *(a.min_days_since_last_order or 0 for a in audiences)})
    for seg, plat, reg, cat, mp_user, day in product(LIFECYCLE_SEGMENTS, platforms, regions, categories, mp, days):
        yield {"segment": seg, "platform": plat, "region": reg, "category": cat, "mp_user": mp_user, "days": day}


def _describe(cell: Cell) -> str:
    parts = [f"segment {cell['segment']}"]
    for key in ("platform", "region", "category"):
        if cell[key] is not None:
            parts.append(f"{key} {cell[key]}")
    if cell["mp_user"] is not None:
        parts.append("Mercado Pago users" if cell["mp_user"] else "non-Mercado Pago users")
    if cell["days"]:
        parts.append(f"{cell['days']}+ days since the last order")
    return ", ".join(parts)


def _violations(country: str, group: Sequence[Campaign], cap: int) -> dict[frozenset[str], tuple[dt.date, Cell]]:
    """Sets of two or more campaigns of one value proposition that can reach one user on one day above the cap.

    A single campaign above the cap is `validation.frequency_capped`'s problem, not an overlap.

    The campaigns running on any day are a subset of those running on the latest start date before it, so the
    start dates are the only days to check.
    """
    found: dict[frozenset[str], tuple[dt.date, Cell]] = {}
    for day in sorted({c.schedule.start for c in group}):
        live = [c for c in group if c.runs_on(day)]
        if sum(c.frequency.weekly_cap for c in live) <= cap:
            continue
        for cell in _cells(country, live):
            members = [c for c in live if _accepts(c, cell)]
            if len(members) > 1 and sum(c.frequency.weekly_cap for c in members) > cap:
                found.setdefault(frozenset(c.id for c in members), (day, cell))
    return {ids: where for ids, where in found.items() if not any(ids < other for other in found)}


def frequency_overlaps(entries: Sequence[Entry], policies: dict[str, CountryPolicy]) -> list[Problem]:
    """Overlapping campaigns (see the module docstring) whose weekly caps add up above the country cap."""
    by_id = {e.campaign.id: e for e in entries if e.campaign is not None}
    groups: dict[tuple[str, str], list[Campaign]] = defaultdict(list)
    for c in (e.campaign for e in by_id.values() if e.campaign is not None):
        if c.schedule.status == "active" and c.channel == "push" and c.country in policies:
            groups[(c.country, c.value_proposition)].append(c)
    problems = []
    for (country, vp), group in sorted(groups.items()):
        cap = policies[country].max_weekly_pushes
        for ids, (day, cell) in sorted(_violations(country, group, cap).items(), key=lambda kv: sorted(kv[0])):
            members = sorted((c for c in group if c.id in ids), key=lambda c: c.id)
            total = sum(c.frequency.weekly_cap for c in members)
            for c in members:
                others = ", ".join(f"{o.id} ({o.frequency.weekly_cap})" for o in members if o is not c)
                problems.append(by_id[c.id].problem(("frequency", "weekly_cap"), (
                    f"overlaps {others}: same value proposition ({vp}), schedules that meet on {day} and users "
                    f"eligible for all ({_describe(cell)}); their weekly caps add up to {total}, above "
                    f"{country}'s cap of {cap} pushes per user per week. Merge them, split their audiences or "
                    f"lower the caps")))
    return problems


def check_catalog(entries: Sequence[Entry], policies: dict[str, CountryPolicy]) -> list[Problem]:
    return [*duplicate_ids(entries), *file_countries(entries), *frequency_overlaps(entries, policies)]
