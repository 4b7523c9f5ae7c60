"""The whole loop in CI: the World's drops through the real sensors and jobs, assignments delivered back to the
World, reports written, any push traceable, and nothing ever sent twice."""

import datetime as dt
import json
import math
from html.parser import HTMLParser

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pushgrowth.cli import app
from pushgrowth.delivery import FileDelivery
from pushgrowth.evaluation import render
from pushgrowth.home import Home
from pushgrowth.sim import World, WorldConfig
from pushgrowth.simulate import simulate
from pushgrowth.storage import dataset
from pushgrowth.storage import lake as store

CONFIG = WorldConfig.build(("MLA", "MLB"), users=300, seed=4)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:  # simulate points DAGSTER_HOME and PUSHGROWTH_HOME at the home
        home = Home.from_env(tmp_path_factory.mktemp("home"))
        env.setenv("DAGSTER_HOME", str(home.dagster))  # recorded, so both are restored afterwards
        env.setenv("PUSHGROWTH_HOME", str(home.root))
        result = simulate(home, CONFIG, days=3)
        yield home, result


def test_each_day_runs_the_whole_chain_once_per_country(run):
    home, result = run
    assert not result.failures
    first = result.days[0].runs
    assert first[0] == "catalog_job"
    for country in ("MLA", "MLB"):
        key = f"{country}|2026-09-01"
        assert [r for r in first if country in r] == [
            key, f"daily_refresh_job {key}", f"model_job {country}", f"assignment_job {key}"]
    instance = dg.DagsterInstance.get()
    records = instance.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": "landing_zone_sensor"}))
    assert len(records) == 6 and len({r.dagster_run.tags["dagster/run_key"] for r in records}) == 6
    users = pq.read_table(store.partition_path(home.lake, dataset("raw_users"), "MLB", result.days[1].date))
    assert users.num_rows == result.days[1].rows["MLB"]["users"]


def test_plans_reach_the_world_and_come_back_in_the_extracts(run):
    home, result = run
    for day in result.days:
        for country in ("MLA", "MLB"):
            assert day.decisions[country] > 0 and day.pushes[country] > 0
    # pushes planned on day 1 for day 2 were attempted by the World and appear in day 2's send log
    outbox = pd.read_parquet(FileDelivery(home.outbox).path("MLB", result.days[1].date))
    sends = pq.read_table(store.partition_path(home.lake, dataset("raw_push_sends"), "MLB",
                                               result.days[1].date)).to_pandas()
    due = outbox[outbox["send_date"].dt.date == result.days[1].date]
    assert len(due) > 0 and set(due["idempotency_key"]) <= set(sends["idempotency_key"])


def test_redelivering_an_outbox_sends_nothing_twice(run):
    home, result = run
    world = World.load(home.world)
    outbox = pd.read_parquet(FileDelivery(home.outbox).path("MLA", result.days[-1].date))
    receipt = world.deliver(outbox)
    assert receipt.accepted == 0 and receipt.duplicates == len(outbox)


def test_rerunning_assignments_rebuilds_the_identical_outbox(run):
    home, result = run
    from pushgrowth.definitions import defs

    day = result.days[-1].date
    path = FileDelivery(home.outbox).path("MLB", day + pd.Timedelta(days=1))
    before = pd.read_parquet(path)
    key = dg.MultiPartitionKey({"country": "MLB", "date": day.isoformat()})
    outcome = defs.resolve_job_def("assignment_job").execute_in_process(partition_key=key,
                                                                       instance=dg.DagsterInstance.get())
    assert outcome.success
    pd.testing.assert_frame_equal(pd.read_parquet(path), before)
    materialization = outcome.asset_materializations_for_node("push_outbox")[0]
    assert materialization.metadata["duplicates"].value == len(before)
    assert materialization.metadata["accepted"].value == 0


def test_summary_and_report_cover_every_country(run):
    home, result = run
    summary = json.loads((home.reports / "summary.json").read_text())
    assert summary["days"] == 3 and summary["failures"] == []
    assert summary["runs"] == sum(len(d.runs) for d in result.days)
    for country in ("MLA", "MLB"):
        data = summary["countries"][country]
        assert data["raw_rows"]["orders"] == sum(d.rows[country]["orders"] for d in result.days)
        assert set(data["groups"]) == {"holdout", "bau", "bandit"}
        assert data["groups"]["bandit"]["sends"] > 0 and data["groups"]["holdout"]["sends"] == 0
        assert {"bau", "bandit"} <= set(data["ate_vs_holdout"])
        assert {"open_rate", "net_revenue_per_user"} <= set(data["lift_bandit_vs_bau"])
        assert set(data["oracle"]["value"]) == {"holdout", "bau", "bandit"}
        assert data["oracle"]["regret_per_week"][0]["bandit"] >= 0
    html = (home.reports / "report.html").read_text()
    assert "MLA" in html and "MLB" in html and "data:image/png;base64," in html
    daily = home.reports / "MLB" / result.days[-1].date.isoformat()
    assert (daily / "report.html").exists() and (daily / "summary.json").exists()


# The renderer fed by the run's own summaries. render.py reads every value defensively (a missing key shows as
# "–"), so a key that summary.py (or the report asset) renamed would only show as a placeholder: these tests read
# the real summary.json files and fail instead.

INTERVAL = ("estimate", "ci_low", "ci_high")
SENSITIVITY = ("mde", "power_target", "expected", "power", "exaggeration", "decisions_multiple",
               "decisions_needed")
RUN_KEYS = ["seed", "days", "start_date", "runs", "generated_at", "failures", "users/*"]
POOLED_KEYS = [f"pooled/{key}" for key in (
    "currency", "fx_usd_per_unit/*",
    *(f"{part}/{bound}" for part in ("ate_vs_holdout/bau", "ate_vs_holdout/bandit", "difference_bandit_minus_bau")
      for bound in INTERVAL),
    *(f"sensitivity/difference_bandit_minus_bau/{key}" for key in SENSITIVITY))]
COUNTRY_KEYS = [f"countries/*/{key}" for key in (
    "decisions", "first_decision", "last_decision", "currency", "groups/holdout", "groups/bau", "groups/bandit",
    *(f"groups/*/{key}" for key in ("decisions", "users", "sends", "opens", "open_rate", "mature_decisions",
                                    "conversions", "conversion_rate", "net_revenue_per_user")),
    *(f"{part}/{bound}" for part in ("lift_bandit_vs_bau/open_rate", "lift_bandit_vs_bau/net_revenue_per_user",
                                     "ate_vs_holdout/bau", "ate_vs_holdout/bandit") for bound in INTERVAL),
    *(f"sensitivity/{metric}/{key}" for metric in ("open_rate", "net_revenue_per_user") for key in SENSITIVITY),
    *(f"by_week/[]/{key}" for key in ("week", "start", "bau_sends", "bau_open_rate", "bandit_sends",
                                      "bandit_open_rate")),
    *(f"by_bandit_share/[]/{key}" for key in ("bandit_share", "campaigns", "decisions")),
    *(f"by_bandit_share/[]/{lift}/{bound}" for lift in ("open_rate_lift", "net_revenue_lift")
      for bound in INTERVAL),
    *(f"campaigns/[]/{key}" for key in ("campaign_id", "group", "decisions", "sends", "open_rate",
                                        "net_revenue_per_user")),
    *(f"oracle/{key}/{group}" for key in ("value", "incremental_net_revenue_per_decision")
      for group in ("holdout", "bau", "bandit")),
    *(f"oracle/regret_per_week/[]/{key}" for key in ("week", "start", "bau", "bandit", "bau_value",
                                                     "bandit_value")),
    "models/serving_model", "models/promotions", "models/rejections")]
"""What render.py reads from a summary, as paths: `*` is every entry of a mapping, `[]` every row of a list."""
DAILY_KEYS = ["as_of", "generated_at", *COUNTRY_KEYS, *(f"countries/*/budget/[]/{key}" for key in (
    "campaign_id", "budget", "committed", "remaining", "pace", "spent_share", "burn_ratio"))]
"""The daily report (evaluation_report) has no pooled section and no run header, but the budget ledger."""


def _slots(node, path: list[str]):
    """(container, key) of every value at `path` in `node`."""
    head, rest = path[0], path[1:]
    if head == "[]":
        items = list(enumerate(node)) if isinstance(node, list) else []
    elif head == "*":
        items = list(node.items()) if isinstance(node, dict) else []
    else:
        items = [(head, node[head])] if isinstance(node, dict) and head in node else []
    for key, value in items:
        if rest:
            yield from _slots(value, rest)
        else:
            yield node, key


def _has_value(value) -> bool:
    return value is not None and value != "" and not (isinstance(value, float) and math.isnan(value))


def _changed(value):
    """A value that must read differently wherever it is shown (None: delete the key)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 2 + 1
    if isinstance(value, str):
        return value + "-changed"
    if isinstance(value, list):
        return [*value, "changed"]
    return None


def _shown(summary: dict, out) -> str:
    return render.render_markdown(summary) + render.render_html(summary, out).read_text()


def _keys_not_shown(summary: dict, paths: list[str], tmp_path, monkeypatch) -> dict[str, str]:
    """{path: why} for every path of `paths` that the summary lacks (no value anywhere), or whose change leaves
    both the Markdown and the HTML as they were. Plots are left out (they cost half a second a render and draw the
    same keys as the tables; the section tests count them)."""
    monkeypatch.setattr(render, "all_plots", lambda summary: [])
    before = _shown(summary, tmp_path / "before.html")
    problems = {}
    for path in paths:
        copy = json.loads(json.dumps(summary))
        slots = list(_slots(copy, path.split("/")))
        if not any(_has_value(container[key]) for container, key in slots):
            problems[path] = "not in the summary"
            continue
        for container, key in slots:
            changed = _changed(container[key])
            if changed is None:
                del container[key]
            else:
                container[key] = changed
        if _shown(copy, tmp_path / "after.html") == before:
            problems[path] = "the report does not show it"
    return problems


class ReportPage(HTMLParser):
    """A rendered HTML report by section: {anchor: {"verdicts": [...], "images": n, "notes": [...],
    "tables": {caption: [row, ...]}}}, each row a {header: cell} dict."""

    def __init__(self, html: str):
        super().__init__()
        self.sections: dict[str, dict] = {}
        self._section: dict | None = None
        self._text: list[str] | None = None
        self._caption, self._headers, self._row = "", [], []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self._section = self.sections.setdefault(dict(attrs)["id"],
                                                     {"verdicts": [], "images": 0, "notes": [], "tables": {}})
        elif self._section is not None and tag == "img":
            self._section["images"] += 1
        elif tag in ("li", "h3", "th", "td", "p"):
            self._text = []
        elif tag == "tr":
            self._row = []

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        section = self._section
        text = "".join(self._text or []).strip()
        if tag in ("li", "h3", "th", "td", "p"):
            self._text = None
        if section is None:
            return
        if tag == "section":
            self._section = None
        elif tag == "li":
            section["verdicts"].append(text)
        elif tag == "p":
            section["notes"].append(text)
        elif tag == "h3":
            self._caption, self._headers = text, []
            section["tables"][text] = []
        elif tag == "th":
            self._headers.append(text)
        elif tag == "td":
            self._row.append(text)
        elif tag == "tr" and self._row:
            section["tables"][self._caption].append(dict(zip(self._headers, self._row, strict=True)))

    def table(self, section: str, caption: str) -> list[dict[str, str]]:
        """The rows of the section's table whose caption starts with `caption` (AssertionError without one)."""
        tables = self.sections[section]["tables"]
        found = [rows for name, rows in tables.items() if name.startswith(caption)]
        assert len(found) == 1, f"{section}: no table {caption!r} in {list(tables)}"
        return found[0]


def _unfilled(rows: list[dict[str, str]], *columns: str) -> list[dict[str, str]]:
    """The rows with a placeholder ("–" or nothing) in one of `columns` (all columns by default)."""
    return [row for row in rows if any(row[c] in (render.DASH, "") for c in (columns or row))]


COUNTRY_TABLES = ("Groups", "Sensitivity: what the experiment can detect", "Results per bandit share",
                  "Open rate by week", "Oracle value per group", "Regret by week", "Top campaigns by decisions",
                  "Serving model")


def _country_has_every_section(page: ReportPage, code: str, country: dict) -> None:
    """Every section a country of the 3-day run has data for is shown, with its values (no placeholder)."""
    anchor = f"country-{code}"
    section = page.sections[anchor]
    verdicts = section["verdicts"]
    assert len(verdicts) == 5 and verdicts[4].startswith("bandit regret (oracle)"), verdicts
    for verdict in verdicts[:4]:  # open rate, net revenue, both ATEs: every one with its numbers and interval
        assert "(95% CI –)" not in verdict and "no interval" not in verdict, verdict
        assert any(c.isdigit() for c in verdict.split("(95% CI ")[1]), verdict
    assert not [note for note in section["notes"] if "No oracle" in note or "No decisions" in note]
    for caption in COUNTRY_TABLES:
        assert page.table(anchor, caption), caption
    assert section["images"] == 3, f"{code}: {section['images']} plots"  # open rate, regret by week, ATEs
    groups = {row["group"]: row for row in page.table(anchor, "Groups")}
    assert list(groups) == ["holdout", "BAU", "bandit"]
    assert _unfilled([groups["BAU"], groups["bandit"]]) == []
    for caption in ("Open rate by week", "Oracle value per group", "Regret by week"):
        assert _unfilled(page.table(anchor, caption)) == [], caption
    assert _unfilled(page.table(anchor, "Sensitivity"),
                     "comparison", "estimate", "detectable (80% power)", "oracle expects", "power") == []
    shares = page.table(anchor, "Results per bandit share")
    assert len(_unfilled(shares)) < len(shares), shares  # a pilot share may be too small for an interval
    assert _unfilled(page.table(anchor, "Top campaigns by decisions"),
                     "campaign", "group", "decisions", "sends", "net revenue per user") == []
    model = {row[""]: row["value"] for row in page.table(anchor, "Serving model")}
    assert model["serving model"] == country["models"]["serving_model"]


def test_the_run_report_shows_every_section_the_real_summary_has_data_for(run, tmp_path):
    home, _ = run
    summary = json.loads((home.reports / "summary.json").read_text())
    page = ReportPage(render.render_html(summary, tmp_path / "report.html").read_text())
    assert list(page.sections) == ["pooled", "country-MLA", "country-MLB"]
    pooled = page.sections["pooled"]
    assert len(pooled["verdicts"]) == 3 and pooled["images"] == 1
    for verdict in pooled["verdicts"]:
        assert "(95% CI –)" not in verdict and "USD" in verdict, verdict
    rates = next(note for note in pooled["notes"] if note.startswith("reporting rates"))
    assert all(f"{code} " in rates and f"{code} {render.DASH}" not in rates for code in ("MLA", "MLB")), rates
    totals = {row["group"]: row for row in page.table("pooled", "Groups, all countries")}
    assert _unfilled([totals["BAU"], totals["bandit"]], "decisions", "sends", "opens", "open rate") == []
    assert page.table("pooled", "Sensitivity")
    for code in ("MLA", "MLB"):
        _country_has_every_section(page, code, summary["countries"][code])
    markdown = render.render_markdown(summary)
    for code, currency in (("MLA", "ARS"), ("MLB", "BRL")):
        assert f"### {code} ({currency}) · {summary['countries'][code]['decisions']:,} decisions" in markdown
    assert "(95% CI –)" not in markdown and "no interval" not in markdown


def test_the_daily_report_shows_every_section_and_the_budget_burn(run, tmp_path):
    home, result = run
    for code in ("MLA", "MLB"):
        summary = json.loads((home.reports / code / result.days[-1].date.isoformat() / "summary.json").read_text())
        page = ReportPage(render.render_html(summary, tmp_path / f"{code}.html").read_text())
        assert list(page.sections) == [f"country-{code}"]
        _country_has_every_section(page, code, summary["countries"][code])
        budget = page.table(f"country-{code}", "Budget (current month)")
        assert len(budget) == len(summary["countries"][code]["budget"]) > 0
        assert _unfilled(budget, "campaign", "budget", "committed", "remaining", "pace") == []
        burning = [row for row in budget if row["burn ratio"].endswith("×") and row["spent"].endswith("%")]
        assert burning, budget[:3]  # a campaign without budget has neither


def test_every_key_the_run_report_reads_is_in_the_real_summary_and_shown(run, tmp_path, monkeypatch):
    home, _ = run
    summary = json.loads((home.reports / "summary.json").read_text())
    assert _keys_not_shown(summary, RUN_KEYS + POOLED_KEYS + COUNTRY_KEYS, tmp_path, monkeypatch) == {}


def test_every_key_the_daily_report_reads_is_in_its_real_summary_and_shown(run, tmp_path, monkeypatch):
    """Per country's last daily report; a key counts as missing only if no country's report has it (an estimate
    the statistics could not make in one country, e.g. the sensitivity of a difference the oracle puts below
    zero, is null there)."""
    home, result = run
    problems = []
    for code in ("MLA", "MLB"):
        path = home.reports / code / result.days[-1].date.isoformat() / "summary.json"
        problems.append(_keys_not_shown(json.loads(path.read_text()), DAILY_KEYS, tmp_path, monkeypatch))
    assert {path: why for path, why in problems[0].items() if path in problems[1]} == {}


def test_any_push_can_be_traced_end_to_end(run):
    home, result = run
    outbox = pd.read_parquet(FileDelivery(home.outbox).path("MLB", result.days[1].date))
    sent = outbox[outbox["send_date"].dt.date <= result.days[-1].date]  # the World has simulated those days
    bandit = sent[sent["group"] == "bandit"]
    trace_id = (bandit if len(bandit) else sent)["trace_id"].iloc[0]
    out = CliRunner().invoke(app, ["trace", trace_id, "--json"], env={"PUSHGROWTH_HOME": str(home.root)})
    assert out.exit_code == 0, out.output
    story = json.loads(out.output)
    assert story["trace_id"] == trace_id and story["decision"]["campaign_id"] == story["campaign"]["id"]
    assert story["outbox"] and story["deliveries"]
    if story["decision"]["group"] == "bandit":
        assert set(story["options"]["dimensions"]) == {"coupon", "template", "hour", "weekday", "frequency"}
    missing = CliRunner().invoke(app, ["trace", "pg-nope"], env={"PUSHGROWTH_HOME": str(home.root)})
    assert missing.exit_code == 1 and "no decision with trace id" in missing.output


def test_power_sizes_an_experiment_from_the_observed_decision_log(run, monkeypatch):
    from pushgrowth.evaluation.power import plan
    from pushgrowth.evaluation.summary import decisions_frame

    home, _ = run
    env = {"PUSHGROWTH_HOME": str(home.root)}
    out = CliRunner().invoke(app, ["power", "--country", "mlb", "--days", "7,28", "--effect", "0.5", "--json"],
                             env=env)
    assert out.exit_code == 0, out.output
    sized = json.loads(out.output)
    assert sized["country"] == "MLB" and [p["days"] for p in sized["plans"]] == [7, 28]
    log = decisions_frame(store.read_range(home.lake, dataset("decision_log"), "MLB"))
    assert sized["treatment"]["decisions"] == int((log["group"] == "bandit").sum())
    assert sized == {"country": "MLB", **plan(log, [7, 28], effect=0.5).to_dict()}
    import io

    from rich.console import Console

    screen = io.StringIO()  # the table goes to the CLI's rich console, bound to the stdout of its import
    monkeypatch.setattr("pushgrowth.cli.console", Console(file=screen, width=200))
    table = CliRunner().invoke(app, ["power", "--country", "MLB", "--effect", "0.5"], env=env)
    shown = screen.getvalue()
    assert table.exit_code == 0 and "users needed" in shown and "intra-user correlation" in shown, shown
    for args, message in ((["--country", "MLB", "--days", "a week"], "expected comma-separated whole days"),
                          (["--country", "MLB", "--metric", "gmv"], "unknown metric 'gmv'"),
                          (["--country", "MLZ"], "no decision log of MLZ")):
        bad = CliRunner().invoke(app, ["power", *args], env=env)
        assert bad.exit_code != 0 and message in bad.output, bad.output


def test_resume_continues_the_saved_world(run):
    home, _ = run
    more = simulate(home, CONFIG, days=1, resume=True)
    assert [r for r in more.days[0].runs if r.startswith("ML")] == ["MLA|2026-09-04", "MLB|2026-09-04"]


KILL_GUARD_SECONDS = 300
"""Hang guards, not speed targets: the killed simulation reaches its dbt build in well under a minute, and the
resumed day takes about one."""


def test_a_simulation_killed_mid_day_resumes_without_help(run, tmp_path, monkeypatch):
    """SIGKILL while a day's dbt build holds the warehouse lock, then `simulate --resume`: the runs the killed
    process left in flight are marked failed (and said so), nothing waits on a lock, and the day runs again to
    the World and its outboxes."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from pushgrowth.simulate import DRIVER, DRIVER_TAG, REFRESH_JOB

    home, _ = run
    copy = Home(tmp_path / "copy")
    shutil.copytree(home.root, copy.root, ignore=shutil.ignore_patterns("*.lock", "*.lock.pid"))
    day = World.load(copy.world).today
    env = {**os.environ, "PUSHGROWTH_HOME": str(copy.root), "DAGSTER_HOME": str(copy.dagster)}
    command = [str(Path(sys.executable).with_name("pushgrowth")), "simulate", "--days", "1", "--resume"]
    killed = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    monkeypatch.setenv("DAGSTER_HOME", str(copy.dagster))  # the instance's storage is found through it
    instance = dg.DagsterInstance.from_config(str(copy.dagster))
    try:
        started = time.monotonic()
        while not [r for r in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED],
                                                              tags={DRIVER_TAG: DRIVER}))
                   if r.job_name == REFRESH_JOB]:
            assert killed.poll() is None, "the simulation ended before its dbt build could be interrupted"
            assert time.monotonic() - started < KILL_GUARD_SECONDS, "no dbt build started"
            time.sleep(0.5)
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    left = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={DRIVER_TAG: DRIVER}))
    assert left, "the kill left no run in flight: nothing to resume from"
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=KILL_GUARD_SECONDS)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "marked failed" in resumed.stderr and left[0].run_id[:8] in resumed.stderr, resumed.stderr[-2000:]
    assert all(instance.get_run_by_id(r.run_id).status == dg.DagsterRunStatus.FAILURE for r in left)
    assert World.load(copy.world).today == day + dt.timedelta(days=1)
    for country in CONFIG.users:
        outbox = pd.read_parquet(FileDelivery(copy.outbox).path(country, day + dt.timedelta(days=1)))
        assert len(outbox) and outbox["idempotency_key"].is_unique
    instance.dispose()


def test_workers_end_when_their_driver_is_killed_alone(run, tmp_path):
    """SIGKILL of the driver's process only (not its group, as the OOM killer or `kill PID` do): its workers
    notice within seconds and exit instead of running on beside whatever starts next."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import psutil

    home, _ = run
    copy = Home(tmp_path / "copy")
    shutil.copytree(home.root, copy.root, ignore=shutil.ignore_patterns("*.lock", "*.lock.pid"))
    env = {**os.environ, "PUSHGROWTH_HOME": str(copy.root), "DAGSTER_HOME": str(copy.dagster)}
    command = [str(Path(sys.executable).with_name("pushgrowth")), "simulate", "--days", "2", "--resume",
               "--workers", "2"]
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        started = time.monotonic()
        workers: list[psutil.Process] = []
        while len(workers) < 2:
            assert driver.poll() is None, "the simulation ended before its workers started"
            assert time.monotonic() - started < KILL_GUARD_SECONDS, "no workers started"
            workers = [p for p in psutil.Process(driver.pid).children()
                       if "multiprocessing" in " ".join(p.cmdline()) and "resource_tracker" not in " ".join(p.cmdline())]
            time.sleep(0.5)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        gone, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive, f"workers still running 30 s after their driver was killed: {[p.pid for p in alive]}"
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_every_stage_of_the_loop_is_timed_in_whichever_process_ran_it(run):
    from pushgrowth.timing import STAGES

    _, result = run
    timed = result.timings
    assert set(timed) <= set(STAGES)
    for stage in ("world", "sensors", "raw", "gx", "dbt", "budget", "assignments", "outbox", "report", "oracle",
                  "mlflow", "dagster", "summary"):
        assert timed.get(stage, 0) > 0, stage
    by_day = {}
    for day in result.days:
        for stage, seconds in day.timings.items():
            by_day[stage] = by_day.get(stage, 0) + seconds
    assert by_day["dbt"] == timed["dbt"] and "summary" not in by_day  # the final reports belong to no day


# --- one name per dataset: lineage, one budget, one serving policy ----------------------------------------------

def test_every_asset_declares_exactly_what_it_reads(run):
    """Each materialization lists the assets whose data it read (`pushgrowth/reads`, noted by the storage layer):
    over the run, that is each asset's declared deps (the lineage the UI shows), no more and no less."""
    from pushgrowth.definitions import defs
    from pushgrowth.defs.provenance import READS

    home, _ = run
    instance = dg.DagsterInstance.from_config(str(home.dagster))
    graph = defs.resolve_asset_graph()
    traced = 0
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1000).records
        metadata = [r.asset_materialization.metadata for r in records]
        reads = [set(m[READS].value) for m in metadata if READS in m]
        if not node.is_materializable or not reads:
            continue
        traced += 1
        declared = {p.to_user_string() for p in node.parent_keys} - {key.to_user_string()}
        assert set().union(*reads) <= declared, key.to_user_string()
        # the gate reads its evidence only when it has a challenger to judge (not in a short run's first days)
        judged = [set(m[READS].value) for m in metadata if READS in m and m.get("decision") is not None
                  and m["decision"].value in ("promoted", "kept champion")]
        if key.to_user_string() == "model_promotion" and not judged:
            assert reads and all(r == {"bandit_model"} for r in reads)  # only the challenger alias was read
            continue
        assert set().union(*reads) == declared, key.to_user_string()
    assert traced == 7  # every Python asset: catalog, ledger, model, gate, assignments, outbox, report
    oracle = instance.fetch_materializations(dg.AssetKey("oracle"), limit=100).records  # the driver reports them
    assert {r.asset_materialization.metadata["country"].value for r in oracle} == set(CONFIG.users)


def test_the_report_shows_the_budget_pacing_enforced(run):
    """One budget: the report's budget per campaign is the catalog's monthly budget times the installation's
    budget scale (computed here from the catalog itself), and what pacing enforced the next day for each group
    is that budget's traffic share."""
    from pushgrowth.settings import load as load_settings
    from pushgrowth.storage import PACING
    from pushgrowth.storage import lake as store
    from pushgrowth.storage.catalog import published_catalog

    home, result = run
    catalog = published_catalog(home.lake)
    compared = 0
    for country in CONFIG.users:
        scale = load_settings(home).scale(country)
        assert scale < 1  # the World is a sample of the marketplace: budgets are scaled, so a mix-up shows
        for folder in sorted((home.reports / country).iterdir()):
            day = dt.date.fromisoformat(folder.name)
            report = json.loads((folder / "summary.json").read_text())["countries"][country]["budget"]
            shown = {row["campaign_id"]: row["budget"] for row in report}
            expected = {c.id: c.budget.monthly * scale for c in catalog.campaigns
                        if c.country == country and c.id in shown}
            assert shown == pytest.approx(expected)
            tomorrow = day + dt.timedelta(days=1)
            if tomorrow.month != day.month or not store.exists(home.lake, PACING, country, tomorrow):
                continue
            for row in store.read_frame(home.lake, PACING, country, tomorrow).itertuples():
                shares = catalog.get(row.campaign_id).shares
                part = getattr(shares, row.group) / (shares.bau + shares.bandit)
                assert row.budget == pytest.approx(shown[row.campaign_id] * part), (row.campaign_id, row.group)
                compared += 1
    assert compared > 0


def test_trace_recomputes_the_logged_propensity_under_tuned_settings(run, tmp_path, monkeypatch):
    """Assignments served with non-default exploration settings log them with the decisions; `trace` rebuilds
    the policy from them and finds the very propensity that was logged (with the defaults it would not)."""
    import dataclasses
    import shutil

    from pushgrowth import trace
    from pushgrowth.bandit.policy import PolicyConfig
    from pushgrowth.bandit.serving import ServingSettings
    from pushgrowth.defs.assignments.assets import daily_assignments
    from pushgrowth.defs.partitions import partition_key
    from pushgrowth.defs.resources import BanditSettings, HomeResource
    from pushgrowth.storage import DECISIONS
    from pushgrowth.storage import lake as store

    home, result = run
    copy = Home(tmp_path / "copy")
    copy.root.mkdir()
    for name in ("lake", "mlflow"):
        shutil.copytree(home.root / name, copy.root / name)
    for file in home.root.glob("*.json"):
        shutil.copy(file, copy.root / file.name)
    tuned = BanditSettings(temperature=0.3, epsilon=0.12, cold_epsilon=0.35, cold_hour_habit=0.15,
                           weekday_habit=0.5, tone_habit=0.5, bau_prior=0.05)
    day = max(store.dates(copy.lake, DECISIONS, "MLB")) - dt.timedelta(days=1)  # the last day assigned
    # the day was delivered: deciding it again under other settings is a correction, on purpose
    config = {"ops": {"daily_assignments": {"config": {"correct_delivered_day": True,
                                                       "correction_reason": "tuned settings (test)"}}}}
    outcome = dg.materialize([daily_assignments], partition_key=partition_key("MLB", day), run_config=config,
                             resources={"home": HomeResource(root=str(copy.root)), "bandit": tuned})
    assert outcome.success
    decisions = store.read_frame(copy.lake, DECISIONS, "MLB", day + dt.timedelta(days=1))
    sent = decisions[(decisions["group"] == "bandit") & decisions["frequency"].notna()].head(12)
    assert len(sent) >= 5
    for trace_id in sent["trace_id"]:
        options = trace.explain(copy, trace_id)["options"]
        assert options["settings_logged"] and options["settings"]["config"]["temperature"] == 0.3
        assert options["recomputed_propensity"] == pytest.approx(options["logged_propensity"], rel=1e-9)

    logged = trace.serving_settings

    def defaults(*args) -> tuple[ServingSettings, bool]:
        settings, _ = logged(*args)
        return dataclasses.replace(settings, config=PolicyConfig()), False

    monkeypatch.setattr(trace, "serving_settings", defaults)
    off = [trace.explain(copy, t)["options"] for t in sent["trace_id"]]
    assert any(o["recomputed_propensity"] != pytest.approx(o["logged_propensity"], rel=1e-6) for o in off)


def _copy_home(home: Home, folder) -> Home:
    """A copy of the run's home (lake, registry, settings) to re-run days on without touching the module's."""
    import shutil

    copy = Home(folder)
    copy.root.mkdir()
    for name in ("lake", "mlflow", "outbox"):
        shutil.copytree(home.root / name, copy.root / name)
    for file in home.root.glob("*.json"):
        shutil.copy(file, copy.root / file.name)
    return copy


def test_delivered_days_are_history_a_rerun_reproduces_them_under_new_settings(run, tmp_path):
    """Every past day re-run after the launchpad's exploration settings changed: served from the settings logged
    with the day, 0 decisions change and delivery gets 0 new keys."""
    from pushgrowth.defs.assignments.assets import daily_assignments, push_outbox
    from pushgrowth.defs.partitions import partition_key
    from pushgrowth.defs.resources import BanditSettings, DeliveryResource, HomeResource
    from pushgrowth.storage import DECISIONS

    home, result = run
    copy = _copy_home(home, tmp_path / "copy")
    resources = {"home": HomeResource(root=str(copy.root)), "delivery": DeliveryResource(home_root=str(copy.root)),
                 "bandit": BanditSettings(temperature=0.4, epsilon=0.2, cold_epsilon=0.4)}
    rerun = 0
    for country in CONFIG.users:
        for day in [d.date for d in result.days]:
            before = store.read(copy.lake, DECISIONS, country, day + dt.timedelta(days=1))
            outcome = dg.materialize([daily_assignments, push_outbox], partition_key=partition_key(country, day),
                                     resources=resources)
            assert outcome.success
            assert store.read(copy.lake, DECISIONS, country, day + dt.timedelta(days=1)).equals(before)
            sent = outcome.asset_materializations_for_node("push_outbox")[0].metadata
            assert sent["accepted"].value == 0 and sent["duplicates"].value == sent["dagster/row_count"].value
            rerun += 1
    assert rerun == len(CONFIG.users) * len(result.days)


def test_a_delivered_day_whose_inputs_changed_is_refused_unless_corrected(run, tmp_path):
    from pushgrowth.decisions import CORRECTION_KEY
    from pushgrowth.defs.assignments.assets import daily_assignments, push_outbox
    from pushgrowth.defs.partitions import partition_key
    from pushgrowth.defs.resources import BanditSettings, DeliveryResource, HomeResource
    from pushgrowth.storage import AUDIENCES, DECISIONS

    home, result = run
    copy = _copy_home(home, tmp_path / "copy")
    day = result.days[-1].date
    audiences = store.read_frame(copy.lake, AUDIENCES, "MLB", day)
    store.write(copy.lake, AUDIENCES, "MLB", day, audiences.iloc[10:])  # the day's audiences re-derived
    resources = {"home": HomeResource(root=str(copy.root)), "delivery": DeliveryResource(home_root=str(copy.root)),
                 "bandit": BanditSettings()}
    key = partition_key("MLB", day)
    before = store.read(copy.lake, DECISIONS, "MLB", day + dt.timedelta(days=1))
    refused = dg.materialize([daily_assignments], partition_key=key, resources=resources, raise_on_error=False)
    assert not refused.success
    failure = next(e for e in refused.all_events if e.is_step_failure).step_failure_data.error.message
    assert "were delivered; re-running them would rewrite history" in failure and "would change" in failure
    assert store.read(copy.lake, DECISIONS, "MLB", day + dt.timedelta(days=1)).equals(before)  # untouched
    config = {"ops": {"daily_assignments": {"config": {"correct_delivered_day": True,
                                                       "correction_reason": "audiences re-derived (test)"}}}}
    corrected = dg.materialize([daily_assignments, push_outbox], partition_key=key, resources=resources,
                               run_config=config)
    assert corrected.success
    logged = json.loads(store.schema_metadata(copy.lake, DECISIONS, "MLB", day + dt.timedelta(days=1))[CORRECTION_KEY])
    assert logged["reason"] == "audiences re-derived (test)" and logged["removed"] > 0
