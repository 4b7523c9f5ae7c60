"""The `pushgrowth` command. Sub-commands live beside the logic they drive and are mounted here."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from pushgrowth.campaigns.commands import app as campaigns_app
from pushgrowth.home import Home

app = typer.Typer(help="pushgrowth: a self-learning growth engine for recurring push campaigns.", no_args_is_help=True)
app.add_typer(campaigns_app, name="campaigns", help="Validate and inspect the campaign catalog.")
bench_app = typer.Typer(help="Benchmarks (speed and memory targets).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
# bound now: the simulation sends run output (dbt logs) to a file. Piped to a log (make demo | tee), rich would
# assume 80 columns and cut the results table's intervals; a terminal keeps its own width.
console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 140)
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
    budget_scale: float = typer.Option(None, min=0.0, help="Factor on every campaign budget (default: simulated "
                                                          "users / 500,000 per country, see the README)."),
    workers: int = typer.Option(2, min=1, max=8, help="Processes running the countries' runs of a day at once "
                                                      "(they take turns on the warehouse)."),
) -> None:
    """Run the platform on the World for DAYS days, through the real Dagster definitions."""
    import datetime as dt

    from pushgrowth.sim import WorldConfig
    from pushgrowth.simulate import HomeInUse
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
        typer.secho(f"invalid simulation settings: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    from pushgrowth.simulate import STAGES

    runs_per_day = len(config.users) * len(STAGES)
    running: dict[str, str] = {}
    with Progress(TextColumn("{task.fields[days]}"), BarColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
                  transient=False) as progress:
        task = progress.add_task("starting", total=days * runs_per_day, days=f"day 0/{days}")
        done_days = [0]

        def on_stage(key: str, stage: str, done: bool) -> None:
            country = key.split("|")[0]
            if done:
                running.pop(country, None)
                progress.advance(task)
            else:
                running[country] = stage
            progress.update(task, description=" ".join(f"{c} {s}" for c, s in sorted(running.items())) or "…")

        def on_day(day) -> None:
            done_days[0] += 1
            progress.update(task, completed=done_days[0] * runs_per_day, days=f"day {done_days[0]}/{days}",
                            description=f"{day.date} done ({len(day.runs)} runs)")

        try:
            result = run(home, config, days, resume=resume, on_day=on_day, on_stage=on_stage,
                         budget_scale=budget_scale, workers=workers)
        except HomeInUse as exc:
            progress.stop()
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(2) from exc
    summary = json.loads((home.reports / "summary.json").read_text())
    table = Table(title=f"pushgrowth simulation: {summary['days']} days from {summary['start_date']}")
    for col in ("country", "users", "sessions", "orders", "pushes sent", "opens", "redemptions", "opt-outs"):
        table.add_column(col, justify="right")
    for country, data in summary["countries"].items():
        r = data["raw_rows"]
        table.add_row(country, f"{config.users.get(country, 0):,}", f"{r['sessions']:,}", f"{r['orders']:,}",
                      f"{r['push_sends']:,}", f"{r['push_events']:,}", f"{r['coupon_redemptions']:,}",
                      f"{r['opt_outs']:,}")
    console.print(table)
    console.print(_results_table(summary))
    console.print(f"home folder: {home.root}; summary: {home.reports / 'summary.json'}; "
                  f"report: {home.reports / 'report.html'}")
    if result.failures:
        console.print("[red]failed runs:[/red]\n" + "\n".join(result.failures))
        raise typer.Exit(1)


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def _ci(interval: dict | None, scale: float = 1.0, unit: str = "", digits: int = 2) -> str:
    if not interval or interval.get("estimate") is None:
        return "–"
    mark = "[green]✓[/green]" if (interval.get("ci_low") or 0) > 0 else "[red]✗[/red]"
    return (f"{scale * interval['estimate']:+.{digits}f}{unit} [{scale * interval['ci_low']:+.{digits}f}, "
            f"{scale * interval['ci_high']:+.{digits}f}] {mark}")


def _results_table(summary: dict) -> Table:
    """Bandit against business-as-usual, per country and pooled (95% intervals; ✓ when above zero)."""
    table = Table(title="bandit vs business-as-usual (95% CI, ✓ = above zero)")
    for col in ("country", "open rate bau", "open rate bandit", "lift (pp)", "lift once a model serves (pp)",
                "ATE bau", "ATE bandit", "regret wk1 → last", "model"):
        table.add_column(col, justify="right")
    for country, data in summary.get("countries", {}).items():
        groups = data.get("groups", {})
        ate = data.get("ate_vs_holdout", {})
        weeks = (data.get("oracle") or {}).get("regret_per_week") or []
        regret = (f"{weeks[0]['bandit']:.3f} → {weeks[-1]['bandit']:.3f}"
                  if len(weeks) >= 2 and weeks[0].get("bandit") is not None and weeks[-1].get("bandit") is not None
                  else "–")
        table.add_row(country, _pct(groups.get("bau", {}).get("open_rate")),
                      _pct(groups.get("bandit", {}).get("open_rate")),
                      _ci(data.get("lift_bandit_vs_bau", {}).get("open_rate"), 100.0),
                      _ci((data.get("since_first_model") or {}).get("open_rate"), 100.0),
                      _ci(ate.get("bau")), _ci(ate.get("bandit")), regret,
                      str((data.get("models") or {}).get("serving_model") or "–").split(" ")[-1])
    pooled = summary.get("pooled") or {}
    if pooled:  # a few US cents a decision: four decimals
        table.add_row("pooled (USD)", "", "", "", "", _ci(pooled["ate_vs_holdout"].get("bau"), digits=4),
                      _ci(pooled["ate_vs_holdout"].get("bandit"), digits=4),
                      "bandit - bau: " + _ci(pooled.get("difference_bandit_minus_bau"), digits=4), "")
        from pushgrowth.evaluation.render import sensitivity_note, underpowered_note

        difference = pooled.get("difference_bandit_minus_bau") or {}
        shown = (difference.get("ci_low") or 0) > 0
        note = (underpowered_note if shown else sensitivity_note)(
            (pooled.get("sensitivity") or {}).get("difference_bandit_minus_bau"), lambda x: f"{x:+.4f} USD")
        if note:
            table.caption = "pooled bandit - bau" + note.replace(";", ",", 1)
    return table


DEMO = {"countries": "MLA,MLB,MLM", "users": 40_000, "days": 10, "seed": 7}
"""What `make demo` runs: ten simulated days, what fits in ten minutes here with the install. A plan lasts a week,
so the first week is mostly decided before any model exists (cold start); days 8-10 start the second week's
plans with trained models, which is what shows the bandit's lift and the regret's fall from week 1 to week 2."""


@app.command()
def demo() -> None:
    """The embedded default: three countries for ten simulated days, from a fresh home folder."""
    simulate(countries=DEMO["countries"], users=DEMO["users"], days=DEMO["days"], seed=DEMO["seed"],
             start_date="2026-09-01", resume=False, reset=True, budget_scale=None, workers=2)


@app.command()
def trace(trace_id: str = typer.Argument(..., help="A trace id (pg-...), as in the outbox and the send log."),
          as_json: bool = typer.Option(False, "--json", help="Print the story as JSON.")) -> None:
    """The whole story of one push: campaign, group, policy and model, options and probabilities, features,
    coupon and budget, delivery and outcomes."""
    from pushgrowth.trace import TraceNotFound, explain

    home = Home.from_env()
    try:
        story = explain(home, trace_id)
    except (TraceNotFound, FileNotFoundError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        print(json.dumps(story, indent=2, default=str))
        return
    d = story["decision"]
    console.rule(f"[bold]{trace_id}[/bold]")
    console.print(f"{story['country']} {story['decision_date']}: user {d['user_id']} in campaign "
                  f"[bold]{d['campaign_id']}[/bold] ({(story.get('campaign') or {}).get('name', '?')}), "
                  f"group [bold]{d['group']}[/bold], policy {d['policy']}, propensity {d['propensity']:.6g}")
    console.print(f"why this campaign: {d.get('campaign_pick')} (value {d.get('campaign_value')}, "
                  f"{d.get('candidates')} campaigns eligible); model {d.get('model_name') or '-'} "
                  f"v{d.get('model_version') or '-'}; catalog {str(d.get('catalog_version'))[:12]}")
    if d.get("frequency") is not None:
        console.print(f"plan: coupon {d.get('coupon_value')} ({d.get('coupon_kind')}), template {d.get('template_id')} "
                      f"({d.get('tone')}), {d.get('send_hour')}h, weekday {d.get('send_weekday')}, "
                      f"x{d.get('frequency')}; expected reward {d.get('expected_reward')}, expected coupon cost "
                      f"{d.get('expected_cost')}")
    for title, key in (("options and probabilities", "options"), ("budget that day", "budget"),
                       ("features seen", "features"), ("outcomes", "outcomes")):
        if story.get(key):
            console.print(f"[bold]{title}[/bold]")
            console.print(json.dumps(story[key], indent=1, default=str))
    for title, key in (("outbox", "outbox"), ("deliveries", "deliveries"), ("opens", "opens"),
                       ("redemptions", "redemptions"), ("opt-outs", "opt_outs")):
        console.print(f"[bold]{title}[/bold]: {len(story.get(key, []))}")
        for item in story.get(key, []):
            console.print("  " + ", ".join(f"{k}={v}" for k, v in item.items()))


@app.command()
def power(
    country: str = typer.Option(..., help="Site code whose observed decisions give the variances (e.g. MLB)."),
    days: str = typer.Option("7,14,28", help="Comma-separated experiment lengths in days."),
    metric: str = typer.Option("net_revenue", help="Per-decision outcome: net_revenue (local currency), "
                                                   "converted (share) or opens."),
    effect: float = typer.Option(None, help="The bandit - BAU difference to detect, in the metric's unit per "
                                            "decision (e.g. 0.05 BRL); without it, only the detectable effects."),
    users: int = typer.Option(None, min=2, help="Users in the experiment, every group included (default: the "
                                                "users the observed decisions reached)."),
    bandit_share: float = typer.Option(None, help="The bandit's share of the pushed decisions, as in a pilot "
                                                  "(default: the observed share)."),
    alpha: float = typer.Option(0.05, help="Two-sided significance level."),
    target_power: float = typer.Option(0.8, "--power", help="Power to reach."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """How many users for how many days a bandit - BAU comparison needs, from the variances observed so far."""
    from pushgrowth.defs.reads import decision_log
    from pushgrowth.evaluation.power import plan
    from pushgrowth.evaluation.summary import decisions_frame

    home = Home.from_env()
    code = country.strip().upper()
    try:
        lengths = [int(d) for d in days.split(",") if d.strip()]
    except ValueError:
        typer.secho(f"--days {days!r}: expected comma-separated whole days, e.g. 7,14,28", fg="red", err=True)
        raise typer.Exit(2) from None
    frame = decisions_frame(decision_log(home.lake, code))
    if not len(frame):
        typer.secho(f"no decision log of {code} in {home.lake}: run `pushgrowth simulate` (or the daily refresh) "
                    "first", fg="red", err=True)
        raise typer.Exit(1)
    try:
        sized = plan(frame, lengths, metric, effect, users, bandit_share, alpha=alpha, power=target_power)
    except ValueError as exc:
        typer.secho(f"power: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps({"country": code, **sized.to_dict()}, indent=2))
        return
    t, c = sized.treatment, sized.control
    console.print(f"{code}, {sized.metric}: observed {t.decisions:,} {t.group} and {c.decisions:,} {c.group} "
                  f"decisions of {t.users:,} and {c.users:,} users over {t.days} days; per decision sd "
                  f"{math.sqrt(t.sigma2):.4g} and {math.sqrt(c.sigma2):.4g}, intra-user correlation "
                  f"{t.rho:.3f} and {c.rho:.3f}; {sized.overlap.share:.0%} of the users in both groups (for "
                  f"different campaigns), correlated across them by {sized.overlap.kappa:.3f}")
    members = ", ".join(f"{g} {s:.0%}" for g, s in sized.shares.items())
    table = Table(title=f"{t.group} - {c.group} on {sized.metric}: alpha {sized.alpha:g}, power {sized.power:g}, "
                        f"users in {members} (a user is in a group per campaign)")
    for column in ("days", "users", "decisions", "std error", "detectable effect",
                   *(("users needed", f"power at {effect:g}") if effect is not None else ())):
        table.add_column(column, justify="right")
    for row in sized.rows:
        extra = ((f"{row.users_needed:,}" if row.users_needed is not None else "never (effect <= 0)",
                  f"{row.power:.0%}") if effect is not None else ())
        table.add_row(str(row.days), f"{row.users:,}", f"{row.decisions:,.0f}", f"{row.std_error:.4g}",
                      f"{row.mde:.4g}", *extra)
    console.print(table)


@app.command()
def live(
    countries: str = typer.Option("MLA,MLB,MLM", help="Comma-separated site codes."),
    users: int = typer.Option(2_000, min=1, help="Users per country on average."),
    days: int = typer.Option(14, min=1, help="Days to live."),
    every: float = typer.Option(60.0, min=0.0, help="Seconds between two simulated days."),
    wait: float = typer.Option(600.0, min=0.0, help="Seconds a day waits for its plans before the World lives it "
                                                    "without them."),
    seed: int = typer.Option(7, help="Seed of the World."),
    start_date: str = typer.Option("2026-09-01", help="First simulated (local) date."),
    resume: bool = typer.Option(False, help="Continue the World saved in the home folder."),
) -> None:
    """Play the marketplace for a platform that runs by itself: while `make dev` runs, drop the World's next day
    into the landing zone every EVERY seconds, after handing it the plans the platform delivered for that day."""
    import datetime as dt

    from pushgrowth.live import LiveWorld, run_live
    from pushgrowth.sim import WorldConfig

    home = Home.from_env()
    if not resume and home.world.exists():
        console.print(f"[red]{home.root} already holds a World.[/red] Use --resume to continue it.")
        raise typer.Exit(2)
    try:
        config = None if resume else WorldConfig.build(_countries(countries), users=users, seed=seed,
                                                       start_date=dt.date.fromisoformat(start_date))
    except ValueError as exc:
        typer.secho(f"invalid live settings: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    from pushgrowth.simulate import HomeInUse, driving

    def on_tick(tick) -> None:
        delivered = ", ".join(f"{c} {n:,}" for c, n in sorted(tick.delivered.items())) or "none"
        late = f"; [yellow]plans late for {', '.join(tick.late)}[/yellow]" if tick.late else ""
        console.print(f"{tick.date}: pushes handed to the World {delivered}{late}; drop landed "
                      f"({', '.join(f'{c} {n:,} rows' for c, n in sorted(tick.rows.items()))})")

    try:
        with driving(home):
            world = LiveWorld(home, config, resume=resume)
            console.print(f"the World of {home.root} lives a day every {every:g} s; start the platform with "
                          "`make dev`")
            run_live(world, days, every, wait, on_tick, first=not resume)
    except HomeInUse as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc


@app.command()
def dev(
    port: int = typer.Option(3000, help="Dagster UI port."),
    mlflow_port: int = typer.Option(5000, help="MLflow UI port (runs, registered models, aliases, gate evidence)."),
) -> None:
    """Start the Dagster UI and daemon, and the MLflow UI, on the home folder."""
    from pushgrowth.bandit import registry
    from pushgrowth.simulate import prepare_dagster_home

    home = Home.from_env()
    prepare_dagster_home(home)
    registry.client(home)  # creates the store on a fresh home, so the UI opens on it
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "DAGSTER_HOME": str(home.dagster), "PUSHGROWTH_HOME": str(home.root),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    mlflow_ui = subprocess.Popen(
        [str(bin_dir / "mlflow"), "ui", "--backend-store-uri", registry.tracking_uri(home),
         "--default-artifact-root", (home.mlflow / "artifacts").as_uri(), "--host", "127.0.0.1",
         "--port", str(mlflow_port)], cwd=REPO, env=env)
    console.print(f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={home.dagster}); "
                  f"MLflow UI on http://127.0.0.1:{mlflow_port}")
    try:
        code = subprocess.call([str(bin_dir / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"),
                                "-h", "127.0.0.1", "-p", str(port)], cwd=REPO, env=env)
    finally:
        mlflow_ui.terminate()
        mlflow_ui.wait(timeout=30)
    raise typer.Exit(code)


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


@bench_app.command("loop")
def bench_loop_cmd(
    users: int = typer.Option(5_000, min=1, help="Users per country on average (as in `simulate`)."),
    days: int = typer.Option(28, min=1),
    countries: str = typer.Option("MLA,MLB,MLM", help="Comma-separated site codes."),
    seed: int = typer.Option(7),
    workers: int = typer.Option(2, min=1, max=8),
    home: Path = typer.Option(None, help="Home folder to run in (emptied first; default: a temporary one)."),
    profile: Path = typer.Option(None, help="Write one cProfile dump per stage into this folder."),
) -> None:
    """Time the closed loop through the real definitions, per stage; prints one JSON line."""
    from pushgrowth.bench import bench_loop
    from pushgrowth.sim import WorldConfig

    try:
        WorldConfig.build(_countries(countries), users=users, seed=seed)
    except ValueError as exc:
        typer.secho(f"invalid benchmark settings: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    print(json.dumps(bench_loop(users, days, _countries(countries), seed, workers, home, profile)))


@bench_app.command("page")
def bench_page_cmd(
    results: Path = typer.Argument(..., exists=True, dir_okay=False,
                                   help="A file of the JSON lines `bench` commands printed."),
) -> None:
    """Print the benchmarks page (Markdown, as docs/benchmarks.md) from recorded benchmark results."""
    from pushgrowth.bench import page

    rows = []
    for number, line in enumerate(results.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            typer.secho(f"{results}:{number}: not a JSON line ({exc.msg})", fg="red", err=True)
            raise typer.Exit(2) from exc
    print(page(rows))


@bench_app.command("assign")
def bench_assign_cmd(
    users: int = typer.Option(1_000_000, min=1),
    country: str = typer.Option("MLM"),
    seed: int = typer.Option(7),
) -> None:
    """Time one day of assignments for USERS eligible users (trained heads, full action spaces); one JSON line."""
    from pushgrowth.bench import bench_assign

    print(json.dumps(bench_assign(users, country.upper(), seed)))
