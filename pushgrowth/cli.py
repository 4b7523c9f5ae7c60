"""The `pushgrowth` command. Sub-commands live beside the logic they drive and are mounted here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pushgrowth.campaigns.cli import app as campaigns_app
from pushgrowth.home import Home

app = typer.Typer(help="pushgrowth: a self-learning growth engine for recurring push campaigns.", no_args_is_help=True)
app.add_typer(campaigns_app, name="campaigns", help="Validate and inspect the campaign catalog.")
bench_app = typer.Typer(help="Benchmarks (speed and memory targets).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
console = Console(file=sys.stdout)  # bound now: the simulation sends run output (dbt logs) to a file
REPO = Path(__file__).resolve().parents[1]


def _countries(value: str) -> list[str]:
    return [c.strip().upper() for c in value.split(",") if c.strip()]


@app.command()
def simulate(
    countries: str = typer.Option("MLA,MLB,MLM", help="Comma-separated site codes."),
    users: int = typer.Option(5_000, min=1, help="Users per country on average (countries keep relative sizes)."),
    days: int = typer.Option(7, min=1, help="Days to simulate."),
    seed: int = typer.Option(7, help="Seed of the World."),
    start_date: str = typer.Option("2026-09-01", help="First simulated (local) date."),
    resume: bool = typer.Option(False, help="Continue the World saved in the home folder."),
    reset: bool = typer.Option(False, help="Delete the home folder's state first (landing, lake, runs, ...)."),
) -> None:
    """Run the platform on the World for DAYS days, through the real Dagster definitions."""
    import datetime as dt

    from pushgrowth.sim import WorldConfig
    from pushgrowth.simulate import simulate as run

    home = Home.from_env()
    if reset and home.root.exists():
        shutil.rmtree(home.root)
    if not resume and home.world.exists():
        console.print(f"[red]{home.root} already holds a simulation.[/red] Use --resume to continue it, "
                      f"or --reset to start over (deletes {home.root}).")
        raise typer.Exit(2)
    try:
        config = WorldConfig.build(_countries(countries), users=users, seed=seed,
                                   start_date=dt.date.fromisoformat(start_date))
    except ValueError as exc:
        console.print(f"[red]invalid simulation settings:[/red] {exc}")
        raise typer.Exit(2) from exc
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("simulating", total=days)

        def on_day(day) -> None:
            progress.update(task, advance=1, description=f"simulated {day.date} ({len(day.runs)} runs)")

        result = run(home, config, days, resume=resume, on_day=on_day)
    summary = result.to_json()
    table = Table(title=f"pushgrowth simulation: {summary['days']} days from {summary['start_date']}")
    for col in ("country", "users", "sessions", "orders", "pushes sent", "opens", "redemptions", "opt-outs"):
        table.add_column(col, justify="right")
    for country, data in summary["countries"].items():
        r = data["raw_rows"]
        table.add_row(country, f"{config.users.get(country, 0):,}", f"{r['sessions']:,}", f"{r['orders']:,}",
                      f"{r['push_sends']:,}", f"{r['push_events']:,}", f"{r['coupon_redemptions']:,}",
                      f"{r['opt_outs']:,}")
    console.print(table)
    console.print(f"home folder: {home.root}; summary: {home.reports / 'summary.json'}")
    if result.failures:
        console.print("[red]failed runs:[/red]\n" + "\n".join(result.failures))
        raise typer.Exit(1)


@app.command()
def demo() -> None:
    """The embedded default: three countries, a few simulated days, from a fresh home folder."""
    simulate(countries="MLA,MLB,MLM", users=3_000, days=5, seed=7, start_date="2026-09-01", resume=False,
             reset=True)


@app.command()
def dev() -> None:
    """Start the Dagster UI (and daemon) on the home folder."""
    from pushgrowth.simulate import prepare_dagster_home

    home = Home.from_env()
    prepare_dagster_home(home)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "DAGSTER_HOME": str(home.dagster), "PUSHGROWTH_HOME": str(home.root),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    dagster = bin_dir / "dagster"
    console.print(f"Dagster UI on http://127.0.0.1:3000 (DAGSTER_HOME={home.dagster})")
    raise typer.Exit(subprocess.call([str(dagster), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1",
                                      "-p", "3000"], cwd=REPO, env=env))


@bench_app.command("sim")
def bench_sim_cmd(
    users: int = typer.Option(1_000_000, min=1),
    country: str = typer.Option("MLB"),
    days: int = typer.Option(3, min=1),
    push_share: float = typer.Option(0.15, min=0.0, max=1.0, help="Share of opted-in users pushed each day."),
    seed: int = typer.Option(7),
) -> None:
    """Time simulated days of one country (pushes delivered, extracts written); prints one JSON line."""
    from pushgrowth.bench import bench_sim

    print(json.dumps(bench_sim(users, country.upper(), days, push_share, seed)))
