"""The coupon budget ledger: what each campaign group has committed this month against its budget, and its pace.

A pure function of the catalog, the redemptions extract and the decisions (which group sent each coupon), with
the installation's budget scale applied once: the pacing of allocation, the budget check of assignments, the
evaluation report, its burn alert and the benchmark all read this one table. Committed spend is the marketplace's share of the
discounts (`discount_amount x coupon.cost_share`); months are calendar months in the country's reference time
zone (its most populous region's), the zone finance closes the month in. Budgets are not prorated: a campaign
that starts on the 20th may spend its monthly budget in the days left.
"""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import pandas as pd

from pushgrowth.campaigns.schema import Campaign, Catalog
from pushgrowth.domain import COUNTRIES, COUPON_VALIDITY_DAYS

REDEMPTION_COLUMNS = ("redemption_id", "order_id", "user_id", "trace_id", "campaign_id", "coupon_code",
                      "discount_amount", "redeemed_at_utc", "country")



def empty_redemptions() -> pd.DataFrame:
    """A redemptions frame with no rows (REDEMPTION_COLUMNS, UTC timestamps): nothing redeemed yet."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in REDEMPTION_COLUMNS}).assign(
        redeemed_at_utc=pd.Series(dtype="datetime64[us, UTC]"), discount_amount=pd.Series(dtype=float))


GROUPS = ("bau", "bandit")
"""The groups a campaign's budget is split between (holdout users get nothing)."""
UNATTRIBUTED = "unattributed"
"""The ledger's group for spend whose trace id no decision explains: counted, with no budget of its own."""

DECISION_COLUMNS = ("trace_id", "date", "campaign_id", "group", "expected_cost")
"""What the ledger reads of the decisions: which group a redemption's trace was in, and coupons in flight."""

LEDGER_COLUMNS: dict[str, str] = {
    "campaign_id": "string", "group": "string", "country": "string", "currency": "string",
    "month": "date32[pyarrow]", "monthly_budget": "float64", "scale": "float64", "budget": "float64",
    "committed": "float64", "outstanding": "float64", "remaining": "float64", "redemptions": "int64",
    "days_in_month": "int64", "days_elapsed": "int64", "days_remaining": "int64", "pace": "float64",
    "spent_share": "float64", "burn_ratio": "float64",
}
"""One row per (campaign, group, month). `monthly_budget` is the catalog's; `budget` is the group's share of it
(its traffic share of the treated groups) times `scale` (the share of users this installation serves): the
budget pacing enforces. `outstanding` = expected cost of coupons in flight at the end of `as_of` (sent in the
last validity days, not yet redeemed), charged to the month of the next decision day. `pace` =
days_elapsed / days_in_month; `spent_share` = committed / budget; `burn_ratio` = spent_share / pace (1 on
plan, above 1 spending too fast; null for a zero budget). `remaining` = budget - committed (negative once
overspent)."""

TOTAL_COLUMNS = ("campaign_id", "country", "currency", "month", "monthly_budget", "budget", "committed",
                 "outstanding", "remaining", "redemptions", "pace", "spent_share", "burn_ratio")


class UnknownCampaignsError(ValueError):
    """Redemptions name campaigns the catalog does not define: spend that no budget accounts for."""

    def __init__(self, campaign_ids: list[str]) -> None:
        self.campaign_ids = campaign_ids
        super().__init__(f"redemptions of campaigns not in the catalog: {', '.join(campaign_ids)}; keep an "
                         f"ended campaign in the catalog (paused, with an end date) while its coupons can be "
                         f"redeemed, so its spend is accounted for")


def reference_timezone(country: str) -> str:
    """The time zone of the country's most populous region."""
    return max(COUNTRIES[country].regions, key=lambda r: r.weight).timezone


def _month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _check(catalog: Catalog, redemptions: pd.DataFrame) -> pd.Series:
    missing = [c for c in REDEMPTION_COLUMNS if c not in redemptions.columns]
    if missing:
        raise ValueError(f"redemptions lack columns {missing}; expected {list(REDEMPTION_COLUMNS)}")
    stamps = pd.to_datetime(redemptions["redeemed_at_utc"])
    if stamps.dt.tz is None:
        raise ValueError("redemptions.redeemed_at_utc must be tz-aware (UTC), not naive timestamps")
    if redemptions["discount_amount"].isna().any() or (redemptions["discount_amount"] < 0).any():
        raise ValueError("redemptions.discount_amount must be a non-negative amount on every row")
    country_of = {c.id: c.country for c in catalog.campaigns}
    unknown = sorted(set(redemptions["campaign_id"].astype(str)) - set(country_of))
    if unknown:
        raise UnknownCampaignsError(unknown)
    expected = redemptions["campaign_id"].astype(str).map(country_of)
    wrong = redemptions["country"].astype(str) != expected
    if wrong.any():
        ids, countries = redemptions["campaign_id"][wrong].astype(str), redemptions["country"][wrong].astype(str)
        pairs = sorted(set(zip(ids, countries, strict=True)))
        raise ValueError(f"redemptions in another country than their campaign's: {pairs[:5]}")
    return stamps


def _spend(catalog: Catalog, redemptions: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Committed spend and redemption counts per (campaign, group, local month) up to the end of `as_of`."""
    stamps = _check(catalog, redemptions)
    countries = redemptions["country"].astype(str)
    local = pd.Series(pd.NaT, index=redemptions.index, dtype="datetime64[us]")
    for country in countries.unique():
        rows = countries == country
        local[rows] = stamps[rows].dt.tz_convert(reference_timezone(country)).dt.tz_localize(None)
    ids = redemptions["campaign_id"].astype(str)
    share = ids.map({c.id: c.coupon.cost_share for c in catalog.campaigns}).to_numpy(np.float64)
    frame = pd.DataFrame({"campaign_id": ids.to_numpy(), "group": redemptions["group"].astype(str).to_numpy(),
                          "local": local.to_numpy(),
                          "cost": redemptions["discount_amount"].to_numpy(np.float64) * share})
    frame = frame[frame["local"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    frame = frame.assign(month=[_month(t.date()) for t in frame["local"]])
    return frame.groupby(["campaign_id", "group", "month"]).agg(committed=("cost", "sum"),
                                                                redemptions=("cost", "size"))


def _runs_in_month(c: Campaign, month: dt.date) -> bool:
    last = month.replace(day=calendar.monthrange(month.year, month.month)[1])
    return (c.schedule.status != "draft" and c.schedule.start <= last
            and (c.schedule.end is None or c.schedule.end >= month))


def group_budgets(monthly: float, shares: dict[str, float], scale: float = 1.0) -> dict[str, float]:
    """A campaign's monthly budget split between its BAU and bandit groups by their traffic shares (holdout
    users get nothing, so the comparison is "the same money, spent differently"), times `scale`."""
    treated = shares.get("bau", 0.0) + shares.get("bandit", 0.0)
    return {g: (monthly * scale * shares.get(g, 0.0) / treated if treated > 0 else 0.0) for g in GROUPS}


def _decisions(decisions: pd.DataFrame | None) -> pd.DataFrame:
    if decisions is None or not len(decisions):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DECISION_COLUMNS})
    missing = [c for c in DECISION_COLUMNS if c not in decisions.columns]
    if missing:
        raise ValueError(f"decisions lack columns {missing}; expected {list(DECISION_COLUMNS)}")
    return decisions


def _outstanding(catalog: Catalog, decisions: pd.DataFrame, redemptions: pd.DataFrame, as_of: dt.date
                 ) -> pd.Series:
    """Expected cost of coupons in flight at the end of `as_of`, per (campaign, group): coupons of the decisions
    of the last validity days, less what their redemptions (up to `as_of`) already cost."""
    dates = pd.to_datetime(decisions["date"]).dt.date
    window = decisions[(dates > as_of - dt.timedelta(days=COUPON_VALIDITY_DAYS)) & (dates <= as_of)]
    window = window[window["expected_cost"].fillna(0) > 0]
    if not len(window):
        return pd.Series(dtype=float)
    realized = pd.Series(dtype=float)
    if len(redemptions):
        share = redemptions["campaign_id"].astype(str).map({c.id: c.coupon.cost_share for c in catalog.campaigns})
        realized = (redemptions["discount_amount"].astype(float) * share.fillna(1.0)).groupby(
            redemptions["trace_id"]).sum()
    left = (window["expected_cost"].astype(float) - window["trace_id"].map(realized).fillna(0.0)).clip(lower=0)
    return left.groupby([window["campaign_id"], window["group"]]).sum()


def budget_ledger(catalog: Catalog, redemptions: pd.DataFrame, as_of: dt.date,
                  decisions: pd.DataFrame | None = None, scale: float = 1.0) -> pd.DataFrame:
    """Budget, committed spend, coupons in flight and pace per (campaign, group, month), as of the end of the
    local day `as_of`: the one budget that pacing enforces and the report, the alerts and the benchmark show.

    Months: `as_of`'s and, on a month's last day, the next one (the month of the next decision day), with a row
    per group for every non-draft campaign scheduled in them. A redemption counts in the group of the decision
    with its trace id (`decisions`: at least DECISION_COLUMNS, the decisions that could have sent the coupons),
    else as UNATTRIBUTED. Redemptions after `as_of` or outside those months only settle coupons in flight.
    Raises UnknownCampaignsError for redemptions of campaigns missing from the catalog, ValueError for a
    malformed frame (see REDEMPTION_COLUMNS, DECISION_COLUMNS) or a scale that is not a positive number.
    """
    if not (isinstance(scale, (int, float)) and scale > 0 and np.isfinite(scale)):
        raise ValueError(f"budget scale must be a positive number, got {scale!r}")
    decisions = _decisions(decisions)
    _check(catalog, redemptions)
    attributed = redemptions.assign(group=redemptions["trace_id"].map(
        decisions.drop_duplicates("trace_id").set_index("trace_id")["group"]).fillna(UNATTRIBUTED))
    spend = _spend(catalog, attributed, as_of)
    outstanding = _outstanding(catalog, decisions, redemptions[redemptions["trace_id"].notna()], as_of)
    current, upcoming = _month(as_of), _month(as_of + dt.timedelta(days=1))
    months = sorted({current, upcoming})
    keys = {(c.id, g, m) for m in months for c in catalog.campaigns if _runs_in_month(c, m) for g in GROUPS}
    keys |= {k for k in spend.index if k[2] in months}
    by_id = {c.id: c for c in catalog.campaigns}
    rows = []
    for campaign_id, group, month in keys:
        c = by_id[campaign_id]
        days = calendar.monthrange(month.year, month.month)[1]
        elapsed = as_of.day if month == current else 0
        committed, count = 0.0, 0
        if (campaign_id, group, month) in spend.index:
            committed, count = spend.loc[(campaign_id, group, month), ["committed", "redemptions"]]
        monthly = float(c.budget.monthly)
        budget = group_budgets(monthly, {"bau": c.shares.bau, "bandit": c.shares.bandit}, scale).get(group, 0.0)
        flight = float(outstanding.get((campaign_id, group), 0.0)) if month == upcoming else 0.0
        pace = elapsed / days
        spent = committed / budget if budget > 0 else np.nan
        rows.append((c.id, group, c.country, c.budget.currency, month, monthly, float(scale), budget,
                     float(committed), flight, budget - committed, int(count), days, elapsed, days - elapsed, pace,
                     spent, spent / pace if pace > 0 else np.nan))
    columns = list(LEDGER_COLUMNS)
    ledger = pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
    ledger = ledger.astype(LEDGER_COLUMNS)
    return ledger.sort_values(["country", "campaign_id", "month", "group"], ignore_index=True)


def campaign_totals(ledger: pd.DataFrame, month: dt.date) -> pd.DataFrame:
    """A ledger's `month` per campaign (its groups added up): what the report's budget table and the burn alert
    show, in TOTAL_COLUMNS."""
    rows = ledger[ledger["month"] == month]
    if not len(rows):
        return pd.DataFrame(columns=list(TOTAL_COLUMNS))
    keys = ["campaign_id", "country", "currency", "month"]
    total = rows.groupby(keys, as_index=False, sort=True).agg(
        monthly_budget=("monthly_budget", "first"), budget=("budget", "sum"), committed=("committed", "sum"),
        outstanding=("outstanding", "sum"), redemptions=("redemptions", "sum"), pace=("pace", "first"))
    total["remaining"] = total["budget"] - total["committed"]
    total["spent_share"] = np.where(total["budget"] > 0, total["committed"] / total["budget"].where(
        total["budget"] > 0), np.nan)
    total["burn_ratio"] = np.where(total["pace"] > 0, total["spent_share"] / total["pace"].where(total["pace"] > 0),
                                   np.nan)
    return total[list(TOTAL_COLUMNS)]
