"""The campaign catalog and the budget ledger as assets."""

import datetime as dt

import dagster as dg
import pandas as pd

from pushgrowth.campaigns import budget_ledger, read_catalog
from pushgrowth.campaigns.budget import campaign_totals
from pushgrowth.campaigns.frames import country_summary
from pushgrowth.campaigns.loader import CatalogBuild, refuse_running_changes
from pushgrowth.defs.automation.conditions import FOLLOW
from pushgrowth.defs.reads import ledger_frames
from pushgrowth.defs.provenance import traced
from pushgrowth.defs.partitions import country_and_date, country_day_partitions
from pushgrowth.defs.resources import HomeResource
from pushgrowth.settings import load as load_settings
from pushgrowth.storage import BUDGET_LEDGER, CATALOG_TABLES
from pushgrowth.storage import lake as store
from pushgrowth.storage.catalog import publish, published_catalog, published_version
from pushgrowth.timing import timed


def _markdown(frame: pd.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.to_markdown(index=False) if len(frame) else "_none_")


def checked_catalog(lake) -> CatalogBuild:
    """The YAML catalog with its problems, and the changes refused against the published one (a running
    campaign's group salt)."""
    build = read_catalog()
    published = published_catalog(lake) if published_version(lake) else None
    refuse_running_changes(build, published, dt.date.today())
    return build


@dg.asset(
    group_name="campaigns",
    kinds={"yaml", "parquet"},
    description="The campaign catalog (campaigns/*.yaml), validated and published to the lake when valid (it "
                "compares itself with the last one it published: a running campaign's group salt may not change).",
)
@traced
def campaign_catalog(context: dg.AssetExecutionContext, home: HomeResource) -> dg.MaterializeResult:
    build = checked_catalog(home.home.lake)
    today = dt.date.today()
    active = pd.DataFrame(
        [{"campaign": c.id, "country": c.country, "value proposition": c.value_proposition,
          "objective": c.objective, "shares (h/bau/bandit)": f"{c.shares.holdout}/{c.shares.bau}/{c.shares.bandit}",
          "monthly budget": f"{c.budget.currency} {c.budget.monthly:,.0f}", "joint actions": c.joint_action_count}
         for c in build.campaigns if c.schedule.status == "active"]
    )
    metadata = {
        "version": build.version,
        "valid": not build.problems,
        "problems": len(build.problems),
        "campaigns": len(build.campaigns),
        "active_campaigns": _markdown(active),
        "countries": dg.MetadataValue.json(country_summary(build.campaigns, today)),
    }
    if build.problems:
        metadata["published_version"] = published_version(home.home.lake) or "none"
        context.log.error(f"catalog {build.version[:12]} has {len(build.problems)} problems; not published")
    else:
        rows = publish(build.catalog(), home.home.lake)
        metadata["published_version"] = build.version
        metadata.update({f"rows/{k}": v for k, v in rows.items()})
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(build.version))


PUBLISHED_TABLES = [
    dg.AssetSpec(dataset.asset.split("/"), deps=[campaign_catalog], group_name="campaigns", kinds={"parquet"},
                 description=f"{dataset.description} Written by campaign_catalog; dbt reads it as a source.")
    for dataset in CATALOG_TABLES.values()
]


@dg.asset_check(asset=campaign_catalog, blocking=True,
                description="Every pre-activation rule passes, and no running campaign changes its group salt.")
def catalog_is_valid(home: HomeResource) -> dg.AssetCheckResult:
    problems = checked_catalog(home.home.lake).problems
    table = pd.DataFrame([p.to_dict() for p in problems])
    return dg.AssetCheckResult(
        passed=not problems,
        description=f"{len(problems)} problems" + (f"; first: {problems[0]}" if problems else ""),
        metadata={"problems": len(problems), "details": _markdown(table)},
    )


@dg.asset(
    name="budget_ledger",
    automation_condition=FOLLOW,
    group_name="campaigns",
    partitions_def=country_day_partitions,
    deps=[campaign_catalog, "raw_coupon_redemptions", "decisions"],
    kinds={"parquet"},
    description="The one budget: per campaign, group and month, the budget pacing enforces (the published "
                "catalog's, times the installation's budget scale, split by traffic share), spend committed by "
                "redemptions, coupons in flight, pace. Read by assignments, their budget check, the report and "
                "its burn alert.",
)
@timed("budget")
@traced
def budget_ledger_asset(context: dg.AssetExecutionContext, home: HomeResource) -> dg.MaterializeResult:
    country, date = country_and_date(context)
    h = home.home
    catalog = published_catalog(h.lake)  # what assignments serve, not the YAML being edited
    redemptions, decisions = ledger_frames(h.lake, country, date)
    scale = load_settings(h).scale(country)
    ledger = budget_ledger(catalog, redemptions, as_of=date, decisions=decisions, scale=scale)
    ledger = ledger[ledger["country"] == country].reset_index(drop=True)
    store.write(h.lake, BUDGET_LEDGER, country, date, ledger)
    current = campaign_totals(ledger, date.replace(day=1))
    shown = current[["campaign_id", "budget", "committed", "remaining", "pace", "burn_ratio"]]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(ledger),
        "budget_scale": scale,
        "committed": float(current["committed"].sum()),
        "budget": float(current["budget"].sum()),
        "ledger": _markdown(shown.sort_values("burn_ratio", ascending=False).head(30)),
    })
