"""Alerts reach a (fake, local) Slack, survive its hiccups, and land in the log file when Slack is gone."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from pushgrowth import alerts
from pushgrowth.alerts import Alert, LogNotifier, Notifier, SlackNotifier, notifier_from_env
from tests.http_server import Response, bypass_proxies, serve

ALERT = Alert(
    kind="run_failure", title="daily_outbox failed", text="MLB 2026-09-01: *KeyError* in `rank_pushes`",
    severity="error", fields={"country": "MLB", "date": "2026-09-01", "run": "<b>x&y</b>"},
)
WEBHOOK_PATH = "/services/T000/B000/s3cr3t-token-XYZ"


@dataclass
class FakeSlack:
    """Answers requests with `script` statuses in order (then 200) and records every request."""

    server: ThreadingHTTPServer
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{WEBHOOK_PATH}"


@pytest.fixture
def slack(monkeypatch) -> Iterator[FakeSlack]:
    bypass_proxies(monkeypatch)
    fake: FakeSlack

    def respond(request: dict) -> Response:
        with fake.lock:
            fake.requests.append(request)
            status, headers = fake.script.pop(0) if fake.script else (200, {})
        return status, headers, b"ok" if status == 200 else b"internal_error"

    with serve(respond) as server:
        fake = FakeSlack(server)
        yield fake


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Record backoff delays instead of sleeping."""
    delays: list[float] = []
    monkeypatch.setattr(alerts.time, "sleep", delays.append)
    return delays


def log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_slack_payload_has_fallback_text_header_section_and_fields():
    payload = ALERT.to_slack()
    assert payload["text"].startswith("[error] daily_outbox failed: MLB 2026-09-01")
    types = [b["type"] for b in payload["blocks"]]
    assert types[0] == "header" and "section" in types
    header = payload["blocks"][0]["text"]
    assert header["type"] == "plain_text" and "daily_outbox failed" in header["text"]
    sections = [b for b in payload["blocks"] if b["type"] == "section"]
    assert sections[0]["text"] == {"type": "mrkdwn", "text": ALERT.text}
    fields = [f["text"] for s in sections if "fields" in s for f in s["fields"]]
    assert fields[:2] == ["*country*\nMLB", "*date*\n2026-09-01"]
    assert fields[2] == "*run*\n&lt;b&gt;x&amp;y&lt;/b&gt;"  # data is escaped, not interpreted by Slack
    json.dumps(payload)


def test_slack_payload_respects_block_kit_limits():
    big = Alert("daily_summary", "t" * 500, "x" * 10_000, fields={f"k{i}": "v" for i in range(23)})
    blocks = big.to_slack()["blocks"]
    assert len(blocks[0]["text"]["text"]) <= 150
    assert len(blocks[1]["text"]["text"]) <= 3000
    assert [len(b["fields"]) for b in blocks if "fields" in b] == [10, 10, 3]


def test_alert_rejects_unknown_severity():
    with pytest.raises(ValueError, match="severity"):
        Alert("run_failure", "t", "x", severity="panic")


def test_slack_receives_the_payload(slack, tmp_path):
    notifier = SlackNotifier(slack.url, fallback=LogNotifier(tmp_path / "alerts.log"), timeout=2)
    assert notifier.send(ALERT) is True
    [request] = slack.requests
    assert request["path"] == WEBHOOK_PATH
    assert request["headers"]["Content-Type"].startswith("application/json")
    assert json.loads(request["body"]) == ALERT.to_slack()
    assert not (tmp_path / "alerts.log").exists()


def test_slack_retries_5xx_with_exponential_backoff(slack, tmp_path, sleeps):
    slack.script = [(500, {}), (500, {})]
    notifier = SlackNotifier(slack.url, fallback=LogNotifier(tmp_path / "alerts.log"), timeout=2)
    assert notifier.send(ALERT) is True
    assert len(slack.requests) == 3
    assert sleeps == pytest.approx([0.2, 0.4])
    assert len({r["body"] for r in slack.requests}) == 1  # the same message each time


def test_slack_retries_for_real_with_small_backoff(slack, tmp_path):
    slack.script = [(503, {}), (502, {})]
    notifier = SlackNotifier(slack.url, fallback=LogNotifier(tmp_path / "alerts.log"), timeout=2, backoff=0.01)
    assert notifier.send(ALERT) is True
    assert len(slack.requests) == 3


def test_slack_honours_retry_after_up_to_5_seconds(slack, tmp_path, sleeps):
    slack.script = [(429, {"Retry-After": "1.5"}), (429, {"Retry-After": "120"})]
    notifier = SlackNotifier(slack.url, fallback=LogNotifier(tmp_path / "alerts.log"), timeout=2)
    assert notifier.send(ALERT) is True
    assert sleeps == [1.5, 5.0]


def test_slack_always_failing_falls_back_to_the_log(slack, tmp_path, sleeps):
    slack.script = [(500, {})] * 10
    path = tmp_path / "nested" / "alerts.log"
    notifier = SlackNotifier(slack.url, fallback=LogNotifier(path), timeout=2, retries=3)
    assert notifier.send(ALERT) is False
    assert len(slack.requests) == 4  # the first attempt and 3 retries
    assert sleeps == pytest.approx([0.2, 0.4, 0.8])
    [entry] = log_lines(path)
    assert entry["kind"] == "run_failure" and entry["title"] == ALERT.title and entry["fields"] == ALERT.fields
    assert "HTTP 500" in entry["error"]
    assert entry["ts"].endswith("+00:00")
    assert WEBHOOK_PATH not in path.read_text() and "s3cr3t" not in path.read_text()


def test_slack_client_errors_are_not_retried(slack, tmp_path, sleeps):
    slack.script = [(404, {})]
    path = tmp_path / "alerts.log"
    assert SlackNotifier(slack.url, fallback=LogNotifier(path), timeout=2).send(ALERT) is False
    assert len(slack.requests) == 1 and sleeps == []
    assert "HTTP 404" in log_lines(path)[0]["error"]


def test_unreachable_slack_falls_back_without_raising_or_leaking_the_url(tmp_path, sleeps, caplog, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    path = tmp_path / "alerts.log"
    notifier = SlackNotifier(url, fallback=LogNotifier(path), timeout=1, retries=2)
    with caplog.at_level("DEBUG"):
        assert notifier.send(ALERT) is False
    assert len(sleeps) == 2
    [entry] = log_lines(path)
    assert entry["error"].startswith("connection error")
    for text in (path.read_text(), caplog.text, repr(notifier)):
        assert "s3cr3t" not in text and WEBHOOK_PATH not in text


def test_log_notifier_appends_json_lines(tmp_path):
    path = tmp_path / "a" / "b" / "alerts.log"
    notifier = LogNotifier(path)
    assert notifier.send(ALERT) is True
    assert notifier.send(Alert("daily_summary", "MLB 2026-09-01", "1,234 pushes")) is True
    entries = log_lines(path)
    assert [e["kind"] for e in entries] == ["run_failure", "daily_summary"]
    assert "error" not in entries[0]


def test_log_notifier_never_raises(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert LogNotifier(blocker / "alerts.log").send(ALERT) is False


def test_notifier_from_env(tmp_path, slack):
    plain = notifier_from_env(tmp_path, env={})
    assert isinstance(plain, LogNotifier) and plain.path == tmp_path / "alerts" / "alerts.log"
    assert isinstance(notifier_from_env(tmp_path, env={"PUSHGROWTH_SLACK_WEBHOOK_URL": "  "}), LogNotifier)

    chosen = notifier_from_env(tmp_path, env={"PUSHGROWTH_SLACK_WEBHOOK_URL": slack.url})
    assert isinstance(chosen, SlackNotifier) and isinstance(chosen, Notifier)
    assert chosen.fallback.path == tmp_path / "alerts" / "alerts.log"
    assert chosen.send(ALERT) is True and len(slack.requests) == 1
    assert "s3cr3t" not in repr(chosen)


def test_notifier_from_env_with_a_malformed_url_uses_the_log(tmp_path, caplog):
    with caplog.at_level("ERROR"):
        chosen = notifier_from_env(tmp_path, env={"PUSHGROWTH_SLACK_WEBHOOK_URL": "file:///etc/s3cr3t"})
    assert isinstance(chosen, LogNotifier)
    assert "s3cr3t" not in caplog.text


def test_an_unexpected_error_never_escapes_send(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError(f"boom while posting to {WEBHOOK_PATH}")

    monkeypatch.setattr(alerts, "_post", broken)
    path = tmp_path / "alerts.log"
    notifier = SlackNotifier(f"https://hooks.example{WEBHOOK_PATH}", fallback=LogNotifier(path))
    assert notifier.send(ALERT) is False
    [entry] = log_lines(path)
    assert "RuntimeError" in entry["error"]
    assert "s3cr3t" not in path.read_text()
