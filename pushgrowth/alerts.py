"""Alerts for humans: to Slack when a webhook is configured, to `<home>/alerts/alerts.log` otherwise.

Alerting must never break a pipeline: a run that failed for a real reason should not fail a second time
because Slack was down, and a successful run should not turn red because a message could not be posted. So
`Notifier.send` reports success as a boolean and never raises; an alert Slack did not take lands in the log
file (with the error) so nothing is lost silently.

The webhook URL is a secret (anyone holding it can post to the channel): it is never logged, never written to
the alert log, never shown in a repr or an error message.

    notifier = notifier_from_env(Home.from_env().root)   # Slack if PUSHGROWTH_SLACK_WEBHOOK_URL is set
    notifier.send(Alert("run_failure", "daily_outbox failed", "MLB 2026-09-01: ...", severity="error"))
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pushgrowth.httpclient import post as _post
from pushgrowth.httpclient import retry_after as _retry_after

log = logging.getLogger(__name__)

WEBHOOK_ENV_VAR = "PUSHGROWTH_SLACK_WEBHOOK_URL"
SEVERITIES = ("info", "warning", "error")

# Slack's limits for Block Kit (https://api.slack.com/reference/block-kit/blocks); longer texts are refused
# with `invalid_blocks`, which would turn a long stack trace into a lost alert, so texts are truncated instead.
_HEADER_MAX = 150
_SECTION_MAX = 3000
_FIELD_MAX = 2000
_FIELDS_PER_SECTION = 10
_FALLBACK_MAX = 4000
_EMOJI = {"info": ":information_source:", "warning": ":warning:", "error": ":rotating_light:"}


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as control characters; field values are data, so they are escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Alert:
    """One message for humans.

    `kind` says what happened (`run_failure`, `check_failure`, `budget_pace`, `model_promotion`,
    `model_rejection`, `daily_summary`, `late_assignments`, ...) so alerts can be filtered in the log file and
    routed later; `text` is Slack mrkdwn written by pushgrowth (links like `<url|label>` are kept), while
    `fields` are short key/value facts (country, date, run id) shown as a grid and escaped as plain data.
    """

    kind: str
    title: str
    text: str
    severity: str = "info"
    fields: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"Alert.severity must be one of {SEVERITIES}, got {self.severity!r}")
        if not self.kind:
            raise ValueError("Alert.kind must not be empty")

    def to_slack(self) -> dict[str, Any]:
        """A Slack incoming-webhook payload: `text` is the fallback for notifications, `blocks` the message."""
        emoji = _EMOJI[self.severity]
        header = _truncate(f"{emoji} {self.title}", _HEADER_MAX)
        blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header,
                                                                     "emoji": True}}]
        if self.text.strip():
            section = _truncate(self.text, _SECTION_MAX)
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": section}})
        items = list(self.fields.items())
        for start in range(0, len(items), _FIELDS_PER_SECTION):
            blocks.append({"type": "section", "fields": [
                {"type": "mrkdwn", "text": _truncate(f"*{_escape(str(k))}*\n{_escape(str(v))}", _FIELD_MAX)}
                for k, v in items[start:start + _FIELDS_PER_SECTION]
            ]})
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"`{_escape(self.kind)}` · {self.severity}"},
        ]})
        fallback = f"[{self.severity}] {self.title}"
        if self.text.strip():
            fallback += f": {self.text}"
        return {"text": _truncate(fallback, _FALLBACK_MAX), "blocks": blocks}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (one line of the alert log)."""
        return {"kind": self.kind, "severity": self.severity, "title": self.title, "text": self.text,
                "fields": {str(k): str(v) for k, v in self.fields.items()}}


@runtime_checkable
class Notifier(Protocol):
    def send(self, alert: Alert) -> bool:
        """Deliver the alert; True if it reached its destination. Never raises."""
        ...


class LogNotifier:
    """Appends one JSON line per alert to a file: the destination when Slack is not configured (local runs,
    tests, CI) and the fallback when Slack fails, so an alert is never silently dropped."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LogNotifier({str(self.path)!r})"

    def send(self, alert: Alert) -> bool:
        return self.record(alert)

    def record(self, alert: Alert, error: str | None = None) -> bool:
        """Append the alert (and why it could not go elsewhere, if `error`); False if the file is unwritable."""
        entry: dict[str, Any] = {"ts": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
                                 **alert.to_json()}
        if error is not None:
            entry["error"] = error
        line = json.dumps(entry, ensure_ascii=False, sort_keys=False) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # one unbuffered write per line in append mode, so concurrent writers do not interleave lines
            with self._lock, open(self.path, "ab", buffering=0) as f:
                f.write(line.encode("utf-8"))
        except OSError as exc:
            log.error("could not write alert %r (%s) to %s: %s", alert.title, alert.kind, self.path, exc)
            return False
        return True


class SlackNotifier:
    """POSTs alerts to a Slack incoming webhook.

    Transient failures (connection errors, timeouts, HTTP 429 and 5xx) are retried `retries` times after the
    first attempt, waiting `backoff`, 2·`backoff`, 4·`backoff`, ... seconds (or the server's Retry-After, at
    most 5 s) so a short Slack hiccup costs at most a few seconds of a run. Other answers (400 invalid
    payload, 403/404 revoked webhook) will not get better by retrying. After the last failure the alert goes
    to `fallback` together with the error, and `send` returns False.
    """

    MAX_RETRY_AFTER = 5.0

    def __init__(self, webhook_url: str, fallback: LogNotifier, timeout: float = 5.0, retries: int = 3,
                 backoff: float = 0.2):
        parts = urllib.parse.urlsplit(webhook_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # the URL itself is not echoed: it is a secret, and error messages end up in logs
            raise ValueError("Slack webhook URL must be an http(s) URL")
        if retries < 0 or timeout <= 0 or backoff < 0:
            raise ValueError("retries and backoff must be >= 0, timeout > 0")
        self._url = webhook_url
        self._host = parts.hostname
        self._path = parts.path
        self.fallback = fallback
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    def __repr__(self) -> str:
        return f"SlackNotifier(host={self._host!r}, fallback={self.fallback!r})"

    def _redact(self, message: str) -> str:
        """Remove the URL, and its path on its own: in a Slack webhook URL the path is the secret part."""
        message = message.replace(self._url, "<webhook>")
        return message.replace(self._path, "/<redacted>") if len(self._path) > 1 else message

    def send(self, alert: Alert) -> bool:
        try:
            error = self._post_with_retries(alert)
        except Exception as exc:  # noqa: BLE001 - the last line of defence of "alerting never breaks a run"
            error = self._redact(f"unexpected {type(exc).__name__}: {exc}")
        if error is None:
            return True
        log.error("Slack alert %r not delivered (%s); written to %s", alert.title, error, self.fallback.path)
        self.fallback.record(alert, error=error)
        return False

    def _post_with_retries(self, alert: Alert) -> str | None:
        """None once Slack took the alert, else the last error (never holding the webhook URL)."""
        body = json.dumps(alert.to_slack(), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        error = "not sent"
        for attempt in range(self.retries + 1):
            delay = self.backoff * 2 ** attempt
            try:
                status, answer_headers, text = _post(self._url, body, headers, self.timeout)
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, DNS, timeout, truncated answer
                error = self._redact(f"connection error: {getattr(exc, 'reason', None) or exc}")
                retryable = True
            else:
                if 200 <= status < 300:
                    return None
                error = self._redact(f"HTTP {status}: {text[:300]}".rstrip(": "))
                retryable = status == 429 or status >= 500
                if status == 429:
                    after = _retry_after(answer_headers.get("Retry-After"))
                    if after is not None:
                        delay = min(after, self.MAX_RETRY_AFTER)
            if not retryable or attempt == self.retries:
                break
            log.warning("Slack alert %r: %s; retry %d/%d in %.2f s", alert.title, error, attempt + 1,
                        self.retries, delay)
            time.sleep(delay)
        return error


def notifier_from_env(home_root: Path, env: Mapping[str, str] = os.environ) -> Notifier:
    """Slack when `PUSHGROWTH_SLACK_WEBHOOK_URL` is set and non-empty, else `<home>/alerts/alerts.log`.

    The log file is also Slack's fallback. A malformed webhook URL is a configuration mistake, but alerting
    must not break the run that is trying to report something: it is logged and the log file is used.
    """
    log_notifier = LogNotifier(Path(home_root) / "alerts" / "alerts.log")
    url = (env.get(WEBHOOK_ENV_VAR) or "").strip()
    if not url:
        return log_notifier
    try:
        return SlackNotifier(url, fallback=log_notifier)
    except ValueError as exc:
        log.error("%s is not usable (%s); alerts go to %s", WEBHOOK_ENV_VAR, exc, log_notifier.path)
        return log_notifier


def innermost_error(error: Any) -> str:
    """The first line of the innermost cause of a (Dagster) error chain: what a person needs to start looking.

    Orchestrators wrap user errors ("Error occurred while executing op ..."); the cause says what went wrong.
    """
    while getattr(error, "cause", None) is not None:
        error = error.cause
    message = (getattr(error, "message", None) or str(error)).strip()
    return message.splitlines()[0] if message else "unknown error"
