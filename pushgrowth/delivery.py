"""Handing the daily outbox to the delivery system, never twice.

An outbox is a DataFrame with one row per push, identified by `idempotency_key` (unique per push). Every
column is passed through untouched: pushgrowth decides *what* to send, the delivery system sends it. Because
runs are retried and re-executed (a failed Dagster step, a backfill), handing over the same outbox again must
never send a push twice; the idempotency key is what makes that safe, and both deliveries report which pushes
the delivery system already had (`duplicates`) rather than hiding them.

`FileDelivery` (the default) writes `<root>/<COUNTRY>/<YYYY-MM-DD>/outbox.parquet`, which the delivery system
(or the simulated World) picks up. The file is replaced atomically, so a reader never sees half an outbox,
and re-delivering a partition replaces it with identical content.

`HttpDelivery` POSTs batches to a delivery service. The contract:

    POST {base_url}/v1/pushes:batch
    Content-Type: application/json; charset=utf-8
    Idempotency-Key: <hex sha256 of the batch's idempotency keys, sorted, joined with "\\n", UTF-8>
    Authorization: Bearer <token>                           (only when a token is given)

    {"country": "MLB", "date": "2026-09-01", "pushes": [{<column>: <value>, ...}, ...]}

    200/201  {"accepted": [<keys newly accepted>], "duplicates": [<keys already received>]}

Rows are JSON objects with every outbox column: dates as ISO strings (`YYYY-MM-DD`; a timezone-naive datetime
column holding only midnights is what pandas makes of a date column, so it is written as dates too; other
timestamps as full ISO 8601), NaN/None/NaT as null, numpy scalars as plain numbers and booleans.

Batches of at most `batch_size` pushes go in a deterministic order (rows sorted by idempotency key, then cut),
so the same outbox always makes the same batches with the same Idempotency-Keys. Connection errors,
timeouts, 408, 409 (a request with this Idempotency-Key is still being processed), 429 and 5xx are retried
up to `retries` times with exponential backoff (`backoff`·2^n plus up to 10 % jitter, or the server's
Retry-After, never more than `max_backoff` seconds). A retried batch is byte-identical (same body, same
Idempotency-Key), so the server can deduplicate it: a server that accepted a batch whose answer got lost
either replays its answer for that Idempotency-Key or reports the pushes as duplicates, and either way sends
each push once. Other 4xx answers, a malformed answer and exhausted retries raise `DeliveryError`, which
names the batch, its first key and the server's message; batches before it were delivered (their report is
`DeliveryError.partial`) and re-running the delivery is safe, since they come back as duplicates.
"""

from __future__ import annotations

import datetime as dt
import http.client
import hashlib
import json
import logging
import math
import os
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pushgrowth.httpclient import post as _post
from pushgrowth.httpclient import retry_after as _retry_after

log = logging.getLogger(__name__)

KEY = "idempotency_key"
OUTBOX_FILE = "outbox.parquet"
ENDPOINT = "/v1/pushes:batch"
RETRYABLE_4XX = frozenset({408, 409, 429})
_COUNTRY = re.compile(r"[A-Za-z0-9_-]+")


class DeliveryError(RuntimeError):
    """The delivery system refused a batch, or could not be reached within the retries."""

    def __init__(self, message: str, *, batch: int | None = None, first_key: str | None = None,
                 status: int | None = None, partial: DeliveryReport | None = None):
        super().__init__(message)
        self.batch = batch
        self.first_key = first_key
        self.status = status
        self.partial = partial


@dataclass(frozen=True)
class DeliveryReport:
    """What a delivery did. `accepted + duplicates` is what the delivery system acknowledged; `duplicates`
    are pushes it already had (a re-run), which it will not send again."""

    target: str
    pushes: int
    accepted: int
    duplicates: int
    batches: int
    retries: int


@dataclass
class _Tally:
    batches: int
    accepted: int = 0
    duplicates: int = 0
    retries: int = 0


@runtime_checkable
class Delivery(Protocol):
    def deliver(self, outbox: pd.DataFrame, country: str, date: dt.date) -> DeliveryReport:
        """Hand `outbox` (the pushes of `country` for `date`) over; re-delivering never sends a push twice."""
        ...


def check_outbox(outbox: pd.DataFrame, country: str) -> None:
    """Refuse outboxes that would make idempotency meaningless or land in the wrong partition."""
    if not _COUNTRY.fullmatch(country):
        raise ValueError(f"country must match {_COUNTRY.pattern} (it names a folder), got {country!r}")
    if KEY not in outbox.columns:
        raise ValueError(f"outbox: missing column {KEY!r}")
    keys = outbox[KEY]
    if keys.isna().any():
        raise ValueError(f"outbox: {int(keys.isna().sum())} rows have no {KEY}")
    dup = keys[keys.duplicated()]
    if len(dup):
        raise ValueError(f"outbox: {KEY} must be unique per push; repeated: {sorted(map(str, dup.unique()))[:5]}")
    if "country" in outbox.columns:
        other = sorted(map(str, set(outbox["country"].dropna().unique()) - {country}))
        if other or outbox["country"].isna().any():
            raise ValueError(f"outbox for {country} holds rows of other countries: {other or ['<null>']}")


class FileDelivery:
    """Writes the outbox to `<root>/<COUNTRY>/<YYYY-MM-DD>/outbox.parquet` (one file per country and day)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FileDelivery({str(self.root)!r})"

    def path(self, country: str, date: dt.date) -> Path:
        return self.root / country / date.isoformat() / OUTBOX_FILE

    def deliver(self, outbox: pd.DataFrame, country: str, date: dt.date) -> DeliveryReport:
        """Replace the partition's file with `outbox`; keys already in the previous file are duplicates.

        The file is written next to its destination under a temporary name and moved into place with
        `os.replace`, so a reader sees the old outbox or the new one, never a partial file.
        """
        check_outbox(outbox, country)
        target = self.path(country, date)
        target.parent.mkdir(parents=True, exist_ok=True)
        previous: set[str] = set()
        if target.exists():
            previous = set(map(str, pq.read_table(target, columns=[KEY]).column(KEY).to_pylist()))
        table = pa.Table.from_pandas(outbox, preserve_index=False)
        tmp = target.with_name(f".{OUTBOX_FILE}.{uuid.uuid4().hex}.tmp")
        try:
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        duplicates = int(outbox[KEY].astype(str).isin(previous).sum())
        report = DeliveryReport(target=str(target), pushes=len(outbox), accepted=len(outbox) - duplicates,
                                duplicates=duplicates, batches=1, retries=0)
        log.info("outbox %s %s: %d pushes written to %s (%d already there)", country, date, report.pushes,
                 target, duplicates)
        return report


class HttpDelivery:
    """POSTs the outbox in batches to `{base_url}/v1/pushes:batch` (contract in the module docstring).

    `retries` counts the attempts after the first one, per batch. Credentials go in `token`, never in the
    URL: the URL is reported and logged, so one with a user, password or query string is refused.
    """

    def __init__(self, base_url: str, token: str | None = None, batch_size: int = 500, timeout: float = 10.0,
                 retries: int = 5, backoff: float = 0.5, max_backoff: float = 8.0):
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("base_url must not hold credentials, a query or a fragment (pass token= instead)")
        if batch_size < 1 or retries < 0 or timeout <= 0 or backoff < 0 or max_backoff < 0:
            raise ValueError("batch_size must be >= 1, retries/backoff/max_backoff >= 0, timeout > 0")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + ENDPOINT
        self._token = token
        self.batch_size = batch_size
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    def __repr__(self) -> str:
        token = "'***'" if self._token else None
        return f"HttpDelivery({self.base_url!r}, token={token}, batch_size={self.batch_size})"

    def deliver(self, outbox: pd.DataFrame, country: str, date: dt.date) -> DeliveryReport:
        check_outbox(outbox, country)
        ordered = outbox.sort_values(KEY, kind="stable", ignore_index=True)
        records = outbox_records(ordered)
        tally = _Tally(batches=math.ceil(len(records) / self.batch_size))
        for number, start in enumerate(range(0, len(records), self.batch_size), start=1):
            batch = records[start:start + self.batch_size]
            keys = [str(r[KEY]) for r in batch]
            try:
                answer = self._send(batch, keys, country, date, number, tally)
            except DeliveryError as exc:
                exc.partial = DeliveryReport(target=self.url, pushes=start, accepted=tally.accepted,
                                             duplicates=tally.duplicates, batches=number - 1,
                                             retries=tally.retries)
                raise
            in_batch = set(keys)
            got_accepted = in_batch & set(map(str, answer["accepted"]))
            got_duplicates = (in_batch & set(map(str, answer["duplicates"]))) - got_accepted
            missing = len(in_batch) - len(got_accepted) - len(got_duplicates)
            if missing:
                log.warning("batch %d/%d: the delivery system did not acknowledge %d of %d pushes", number,
                            tally.batches, missing, len(in_batch))
            tally.accepted += len(got_accepted)
            tally.duplicates += len(got_duplicates)
        report = DeliveryReport(target=self.url, pushes=len(records), accepted=tally.accepted,
                                duplicates=tally.duplicates, batches=tally.batches, retries=tally.retries)
        log.info("outbox %s %s: %d pushes to %s in %d batches: %d accepted, %d duplicates, %d retries", country,
                 date, report.pushes, self.url, report.batches, report.accepted, report.duplicates, report.retries)
        return report

    def _delay(self, retry: int, retry_after: float | None) -> float:
        """Seconds before retry number `retry` (0-based): the server's wish if it said, else exponential
        backoff with jitter so many clients do not retry in lockstep; never more than `max_backoff`."""
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        base = self.backoff * 2 ** retry
        return min(base + random.uniform(0, 0.1 * base), self.max_backoff)

    def _send(self, batch: Sequence[Mapping[str, Any]], keys: list[str], country: str, date: dt.date,
              number: int, tally: _Tally) -> dict[str, list[Any]]:
        """Send one batch until it is answered (counting retries in `tally`); returns the answer."""
        body = json.dumps({"country": country, "date": date.isoformat(), "pushes": list(batch)},
                          ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json",
                   "Idempotency-Key": batch_idempotency_key(keys)}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        where = f"batch {number}/{tally.batches} (first key {keys[0]!r})"
        for attempt in range(self.retries + 1):
            retry_after: float | None = None
            status: int | None
            try:
                status, answer_headers, text = _post(self.url, body, headers, self.timeout)
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, timeout, truncated answer
                problem, status = f"connection error: {getattr(exc, 'reason', None) or exc}", None
            else:
                if 200 <= status < 300:
                    return _parse_answer(text, where, status, number, keys[0])
                problem = f"HTTP {status}: {_server_message(text)}"
                if not (status >= 500 or status in RETRYABLE_4XX):
                    raise DeliveryError(f"{where} refused by {self.url}: {problem}", batch=number,
                                        first_key=keys[0], status=status)
                retry_after = _retry_after(answer_headers.get("Retry-After"))
            if attempt == self.retries:
                raise DeliveryError(f"{where} not delivered to {self.url} after {attempt + 1} attempts: {problem}",
                                    batch=number, first_key=keys[0], status=status)
            delay = self._delay(attempt, retry_after)
            log.warning("%s: %s; retry %d/%d in %.2f s", where, problem, attempt + 1, self.retries, delay)
            time.sleep(delay)
            tally.retries += 1
        raise AssertionError("unreachable")  # pragma: no cover


def batch_idempotency_key(keys: Sequence[str]) -> str:
    """The Idempotency-Key of a batch: the same pushes always make the same key, whatever their order."""
    return hashlib.sha256("\n".join(sorted(keys)).encode("utf-8")).hexdigest()


def outbox_records(outbox: pd.DataFrame) -> list[dict[str, Any]]:
    """The outbox's rows as JSON-ready dicts (see the module docstring for how values are written)."""
    columns: dict[str, list[Any]] = {}
    for name in outbox.columns:
        series = outbox[name]
        if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series.dtype):
            values = series
            only_dates = values.dt.tz is None and bool((values.dropna() == values.dropna().dt.normalize()).all())
            columns[str(name)] = [None if pd.isna(v) else (v.date().isoformat() if only_dates else v.isoformat())
                                  for v in values]
        else:
            columns[str(name)] = [_json_value(v) for v in series.tolist()]
    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*columns.values())]


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else (None if math.isinf(value) else float(value))
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (str, bytes)):
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _parse_answer(text: str, where: str, status: int, number: int, first_key: str) -> dict[str, list[Any]]:
    """The answer's key lists; a 2xx answer that does not follow the contract is a bug, not a hiccup."""
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if not (isinstance(answer, dict) and isinstance(answer.get("accepted", []), list)
            and isinstance(answer.get("duplicates", []), list)):
        raise DeliveryError(f"{where}: HTTP {status} with an answer that is not "
                            f"{{'accepted': [...], 'duplicates': [...]}}: {text[:200]!r}",
                            batch=number, first_key=first_key, status=status)
    return {"accepted": answer.get("accepted", []), "duplicates": answer.get("duplicates", [])}


def _server_message(text: str) -> str:
    """The server's explanation: `error`/`message`/`detail` of a JSON answer, else the start of the body."""
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        for name in ("message", "error", "detail"):
            if answer.get(name):
                return str(answer[name])[:500]
    return text.strip()[:500] or "(empty answer)"
