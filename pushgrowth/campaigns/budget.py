"""The coupon budget ledger: what each campaign has committed this month against its budget, and its pace.

A pure function of the catalog and the redemptions extract, so that the pacing rules of allocation, the budget
checks and the evaluation report all read the same numbers. Committed spend is the marketplace's share of the
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
from pushgrowth.domain import COUNTRIES

REDEMPTION_COLUMNS = ("redemption_id", "order_id", "user_id", "trace_id", "campaign_id", "coupon_code",
                      "discount_amount", "redeemed_at_utc", "country")

LEDGER_COLUMNS: dict[str, str] = {
    "campaign_id": "string", "country": "string", "currency": "string", "month": "date32[pyarrow]",
    "budget": "float64", "committed": "float64", "remaining": "float64", "redemptions": "int64",
    "days_in_month": "int64", "days_elapsed": "int64", "days_remaining": "int64", "pace": "float64",
    "spent_share": "float64", "burn_ratio": "float64",
}
"""`pace` = days_elapsed / days_in_month, the share of the budget a linear plan has spent by `as_of`;
`spent_share` = committed / budget; `burn_ratio` = spent_share / pace (1 on plan, above 1 spending too fast;
null for a zero budget). `remaining` = budget - committed, negative once overspent."""


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
    """Committed spend and redemption counts per (campaign, local month) up to the end of `as_of`."""
    stamps = _check(catalog, redemptions)
    countries = redemptions["country"].astype(str)
    local = pd.Series(pd.NaT, index=redemptions.index, dtype="datetime64[us]")
    for country in countries.unique():
        rows = countries == country
        local[rows] = stamps[rows].dt.tz_convert(reference_timezone(country)).dt.tz_localize(None)
    ids = redemptions["campaign_id"].astype(str)
    share = ids.map({c.id: c.coupon.cost_share for c in catalog.campaigns}).to_numpy(np.float64)
    frame = pd.DataFrame({"campaign_id": ids.to_numpy(), "local": local.to_numpy(),
                          "cost": redemptions["discount_amount"].to_numpy(np.float64) * share})
    frame = frame[frame["local"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    frame = frame.assign(month=[_month(t.date()) for t in frame["local"]])
    return frame.groupby(["campaign_id", "month"]).agg(committed=("cost", "sum"), redemptions=("cost", "size"))


def _runs_in_month(c: Campaign, month: dt.date) -> bool:
    last = month.replace(day=calendar.monthrange(month.year, month.month)[1])
    return (c.schedule.status != "draft" and c.schedule.start <= last
            and (c.schedule.end is None or c.schedule.end >= month))


def budget_ledger(catalog: Catalog, redemptions: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Budget, committed spend and pace per (campaign, month), as of the end of the local day `as_of`.

    Rows: every (campaign, month) with redemptions up to `as_of`, and `as_of`'s month for every non-draft
    campaign scheduled in it (spend 0 if nothing was redeemed). Redemptions after `as_of` are ignored.
    Raises UnknownCampaignsError for redemptions of campaigns missing from the catalog, ValueError for a
    malformed frame (see REDEMPTION_COLUMNS).
    """
    spend = _spend(catalog, redemptions, as_of)
    current = _month(as_of)
    keys = set(spend.index) | {(c.id, current) for c in catalog.campaigns if _runs_in_month(c, current)}
    by_id = {c.id: c for c in catalog.campaigns}
    rows = []
    for campaign_id, month in keys:
        c = by_id[campaign_id]
        days = calendar.monthrange(month.year, month.month)[1]
        elapsed = as_of.day if month == current else days
        committed, count = 0.0, 0
        if (campaign_id, month) in spend.index:
            committed, count = spend.loc[(campaign_id, month), ["committed", "redemptions"]]
        budget, pace = float(c.budget.monthly), elapsed / days
        spent = committed / budget if budget > 0 else np.nan
        rows.append((c.id, c.country, c.budget.currency, month, budget, float(committed), budget - committed,
                     int(count), days, elapsed, days - elapsed, pace, spent, spent / pace))
    columns = list(LEDGER_COLUMNS)
    ledger = pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
    ledger = ledger.astype(LEDGER_COLUMNS)
    return ledger.sort_values(["country", "campaign_id", "month"], ignore_index=True)
