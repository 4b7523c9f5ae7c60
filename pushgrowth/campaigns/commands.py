"""`pushgrowth campaigns ...`: validate the catalog before a merge, and look at one campaign as the bandit sees it.

Problems are printed as plain `file: campaign_id: field: message` lines (no markup, no wrapping) so that editors
and CI annotations can read them; `--json` gives the same content with documented keys.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from pushgrowth.campaigns.frames import country_summary
from pushgrowth.campaigns.loader import CatalogBuild, read_catalog
from pushgrowth.campaigns.wording import format_money
from pushgrowth.campaigns.schema import Campaign

app = typer.Typer(help="Validate and inspect the campaign catalog.", no_args_is_help=True)

PATH_HELP = "Catalog folder or file (default: $PUSHGROWTH_CATALOG, else the repository's campaigns/)."


def _summary_json(build: CatalogBuild, on: dt.date) -> dict[str, Any]:
    return {
        "valid": not build.problems,
        "path": str(build.root),
        "version": build.version or None,
        "on": on.isoformat(),
        "campaigns": len(build.entries),
        "countries": country_summary(build.campaigns, on),
        "problems": [p.to_dict() for p in build.problems],
    }


def _table(summary: dict[str, dict[str, Any]], on: dt.date) -> Table:
    table = Table(title=f"campaign catalog (live: active and scheduled on {on})")
    for column in ("country", "campaigns", "active", "paused", "draft", "live", "budget/month", "median actions"):
        table.add_column(column, justify="left" if column == "country" else "right")
    for code, row in summary.items():
        budget = format_money(row["monthly_budget"], row["currency"]).split(" ", 1)[1]
        table.add_row(code, str(row["campaigns"]), str(row["active"]), str(row["paused"]), str(row["draft"]),
                      str(row["live"]), f"{row['currency']} {budget}", f"{row['median_joint_actions']:,.0f}")
    return table


def _day(value: str | None) -> dt.date:
    try:
        return dt.date.fromisoformat(value) if value else dt.date.today()
    except ValueError:
        raise typer.BadParameter(f"expected a date like 2026-09-01, got {value!r}") from None


@app.command()
def validate(
    path: Path | None = typer.Argument(None, help=PATH_HELP, show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (keys documented in the README)."),
    on: str | None = typer.Option(None, help="Day for the `live` count, YYYY-MM-DD (default: today)."),
) -> None:
    """Check every campaign against the schema and the company policy; exit 1 listing every problem."""
    day = _day(on)
    build = read_catalog(path)
    if as_json:
        typer.echo(json.dumps(_summary_json(build, day), indent=2, ensure_ascii=False))
    elif build.problems:
        for problem in build.problems:
            typer.echo(str(problem))
        bad = len({(p.file, p.campaign_id) for p in build.problems})
        typer.echo(f"\n{len(build.problems)} problem(s) in {bad} campaign(s) or file(s); "
                   "the catalog is not valid.")
    else:
        console = Console(width=max(Console().width, 100))
        console.print(_table(country_summary(build.campaigns, day), day))
        console.print(f"catalog valid: {len(build.campaigns)} campaigns, version {build.version[:12]}",
                      markup=False, highlight=False)
    raise typer.Exit(1 if build.problems else 0)


def _plain(value: Any) -> Any:
    """Model data with whole floats written as integers, as a person would write them in the YAML."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _action_breakdown(c: Campaign) -> str:
    parts = [(len(c.coupon.values), "coupons"), (len(c.templates), "templates"),
             (len(c.send_window.hours), "hours"), (len(c.send_window.weekdays), "weekdays"),
             (len(c.frequency.options), "frequencies")]
    return f"{c.joint_action_count:,} = " + " x ".join(f"{n} {what}" for n, what in parts)


@app.command()
def show(
    campaign_id: str = typer.Argument(..., metavar="ID", help="Campaign id, e.g. mla-envio-gratis-reactivacion."),
    path: Path | None = typer.Option(None, "--path", help=PATH_HELP, show_default=False),
) -> None:
    """Print one campaign as YAML with its joint action count; exit 1 for an unknown id."""
    build = read_catalog(path)
    entry = next((e for e in build.entries if e.campaign is not None and e.campaign.id == campaign_id), None)
    if entry is None or entry.campaign is None:
        broken = [p for p in build.problems if p.campaign_id == campaign_id]
        if broken:
            typer.echo(f"campaign {campaign_id} cannot be read:", err=True)
            for problem in broken:
                typer.echo(f"  {problem}", err=True)
        else:
            ids = [e.ref for e in build.entries]
            close = difflib.get_close_matches(campaign_id, ids, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            typer.echo(f"unknown campaign id {campaign_id!r} in {build.root}.{hint}", err=True)
        raise typer.Exit(1)
    campaign = entry.campaign
    data = _plain(campaign.model_dump(mode="json", exclude_none=True))
    typer.echo(f"# {entry.file}")
    typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110).rstrip())
    typer.echo(f"# joint actions: {_action_breakdown(campaign)}")
    own = [p for p in build.problems if p.campaign_id == campaign_id]
    if own:
        typer.echo(f"# {len(own)} problem(s):", err=True)
        for problem in own:
            typer.echo(f"#   {problem}", err=True)
    elif build.problems:
        typer.echo(f"# note: the catalog has {len(build.problems)} problem(s) elsewhere; run "
                   f"`pushgrowth campaigns validate`", err=True)
