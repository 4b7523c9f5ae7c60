"""The daily evaluation report of a country: is the bandit beating business-as-usual, and by how much?"""

import datetime as dt
import json

import dagster as dg

from pushgrowth.alerts import Alert
from pushgrowth.campaigns.budget import campaign_totals
from pushgrowth.defs import reads
from pushgrowth.defs.automation.conditions import FOLLOW
from pushgrowth.defs.provenance import traced
from pushgrowth.defs.models.assets import BY_COUNTRY
from pushgrowth.defs.partitions import country_and_date, country_day_partitions
from pushgrowth.defs.resources import HomeResource, NotifierResource
from pushgrowth.evaluation import summary as evaluation
from pushgrowth.evaluation.models import model_summary
from pushgrowth.storage import BUDGET_LEDGER
from pushgrowth.timing import timed

BURN_TOO_FAST = 1.25
"""A campaign whose coupon spend runs 25% ahead of an even pace gets an alert."""


BUDGET_COLUMNS = ["campaign_id", "budget", "committed", "outstanding", "remaining", "pace", "spent_share",
                  "burn_ratio"]


def budget_rows(ledger, date: dt.date) -> list[dict]:
    """The report's budget table: the ledger's month of `date` per campaign (the budget pacing enforces)."""
    return campaign_totals(ledger, date.replace(day=1))[BUDGET_COLUMNS].to_dict(orient="records")


@dg.asset(
    automation_condition=FOLLOW,
    partitions_def=country_day_partitions,
    group_name="reports",
    kinds={"html", "json"},
    deps=["decision_log", "budget_ledger", "oracle", dg.AssetDep("model_promotion", partition_mapping=BY_COUNTRY)],
    description="Per country and day: open rate, conversions and net revenue per group, ATE of BAU and bandit "
                "against holdout with 95% CIs, bandit-vs-BAU lift, results per bandit share, the serving model and "
                "its off-policy evidence, budget burn, and (in simulation) the oracle's value and regret. HTML with "
                "plots and JSON under <home>/reports/<COUNTRY>/<date>/.",
)
@timed("report")
@traced
def evaluation_report(context: dg.AssetExecutionContext, home: HomeResource, notifier: NotifierResource
                      ) -> dg.MaterializeResult:
    from pushgrowth.evaluation.render import render_html, render_markdown

    country, date = country_and_date(context)
    h = home.home
    frame = evaluation.decisions_frame(reads.decision_log(h.lake, country, date))
    oracle = reads.oracle(h.lake, country, date)
    data = evaluation.country_summary(frame, oracle)
    data["models"] = model_summary(h, country)
    data["budget"] = budget_rows(reads.require(h.lake, BUDGET_LEDGER, country, date), date)
    report = {"generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "as_of": date.isoformat(),
              "countries": {country: data}}
    folder = h.reports / country / date.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(report, indent=2, default=str))
    html = render_html(report, folder / "report.html", title=f"pushgrowth {country} {date}")
    markdown = render_markdown(report)
    fast = [b for b in data["budget"] if (b.get("burn_ratio") or 0) > BURN_TOO_FAST]
    if fast:
        notifier.send(Alert("budget_pace", f"{country} {date}: coupon spend ahead of pace",
                            "\n".join(f"{b['campaign_id']}: {b['burn_ratio']:.2f}x the even pace" for b in fast[:10]),
                            severity="warning", fields={"country": country, "campaigns": str(len(fast))}),
                      context.log)
    notifier.send(Alert("daily_summary", f"{country} {date}: daily summary", markdown[:2500], severity="info",
                        fields={"report": str(html)}))
    groups = data.get("groups", {})
    return dg.MaterializeResult(metadata={
        "summary": dg.MetadataValue.md(markdown),
        "report": dg.MetadataValue.path(str(html)),
        "json": dg.MetadataValue.path(str(folder / "summary.json")),
        "decisions": data.get("decisions", 0),
        "bandit_open_rate": groups.get("bandit", {}).get("open_rate") or 0.0,
        "bau_open_rate": groups.get("bau", {}).get("open_rate") or 0.0,
        "serving_model": data["models"]["serving_model"],
    })
