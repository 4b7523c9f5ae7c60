"""Handing the outbox over never sends a push twice: to a Parquet partition, or to a (fake, local) HTTP service."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pushgrowth import delivery
from pushgrowth.delivery import Delivery, DeliveryError, FileDelivery, HttpDelivery, outbox_records
from tests.http_server import Response, bypass_proxies, serve

DAY = dt.date(2026, 9, 1)
TOKEN = "tok-s3cr3t"


def make_outbox(n: int, country: str = "MLB", start: int = 0) -> pd.DataFrame:
    ids = np.arange(start, start + n)
    rng = np.random.default_rng(n)
    frame = pd.DataFrame({
        "idempotency_key": [f"{DAY}-{country}-{i:05d}-0" for i in ids],
        "trace_id": [f"tr-{i}" for i in ids],
        "country": country,
        "user_id": ids.astype("int64") + 1000,
        "campaign_id": "c-back-to-school",
        "send_date": pd.Timestamp(DAY),
        "send_hour_local": rng.integers(8, 22, n),
        "title": "¡Vuelta a clases!",
        "body": "Hasta 20% OFF",
        "coupon_code": [None if i % 3 else f"BTS{i}" for i in ids],
        "coupon_value": [np.nan if i % 3 else 20.0 for i in ids],
        "template_id": "t1",
    })
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)  # not in key order


def read_back(path) -> pd.DataFrame:
    """The Parquet file as a DataFrame; Parquet has no second-resolution timestamps, so pandas' `datetime64[s]`
    comes back as `datetime64[ms]` (same values)."""
    return pq.read_table(path).to_pandas().astype({"send_date": "datetime64[s]"})


# --- FileDelivery ---------------------------------------------------------------------------------------------

def test_file_delivery_writes_the_partition(tmp_path):
    outbox = make_outbox(50)
    report = FileDelivery(tmp_path).deliver(outbox, "MLB", DAY)
    path = tmp_path / "MLB" / "2026-09-01" / "outbox.parquet"
    assert report == delivery.DeliveryReport(str(path), pushes=50, accepted=50, duplicates=0, batches=1, retries=0)
    pd.testing.assert_frame_equal(read_back(path), outbox)
    assert [p.name for p in path.parent.iterdir()] == ["outbox.parquet"]  # no temporary file left behind
    assert isinstance(FileDelivery(tmp_path), Delivery)


def test_file_redelivery_is_identical_and_reports_duplicates(tmp_path):
    outbox = make_outbox(50)
    target = FileDelivery(tmp_path)
    target.deliver(outbox, "MLB", DAY)
    path = target.path("MLB", DAY)
    first = path.read_bytes()
    again = target.deliver(outbox, "MLB", DAY)
    assert (again.accepted, again.duplicates) == (0, 50)
    assert path.read_bytes() == first
    pd.testing.assert_frame_equal(read_back(path), outbox)

    grown = pd.concat([outbox, make_outbox(10, start=50)], ignore_index=True)
    third = target.deliver(grown, "MLB", DAY)
    assert (third.pushes, third.accepted, third.duplicates) == (60, 10, 50)


def test_file_delivery_keeps_partitions_apart(tmp_path):
    target = FileDelivery(tmp_path)
    target.deliver(make_outbox(5), "MLB", DAY)
    other = target.deliver(make_outbox(5, country="MLA"), "MLA", DAY)
    assert other.accepted == 5
    assert target.deliver(make_outbox(5), "MLB", DAY + dt.timedelta(days=1)).accepted == 5


def test_file_delivery_writes_an_empty_outbox(tmp_path):
    report = FileDelivery(tmp_path).deliver(make_outbox(0), "MLB", DAY)
    assert (report.pushes, report.accepted) == (0, 0)
    assert pq.read_table(report.target).num_rows == 0


@pytest.mark.parametrize("mutate, message", [
    (lambda f: f.drop(columns="idempotency_key"), "missing column"),
    (lambda f: pd.concat([f, f.head(1)]), "unique"),
    (lambda f: f.assign(idempotency_key=[None] + list(f.idempotency_key[1:])), "no idempotency_key"),
    (lambda f: f.assign(country="MLA"), "other countries"),
])
def test_bad_outboxes_are_refused(tmp_path, mutate, message):
    with pytest.raises(ValueError, match=message):
        FileDelivery(tmp_path).deliver(mutate(make_outbox(5)), "MLB", DAY)
    assert not (tmp_path / "MLB").exists()


def test_country_cannot_escape_the_root(tmp_path):
    with pytest.raises(ValueError, match="country"):
        FileDelivery(tmp_path).deliver(make_outbox(1, country="../x"), "../x", DAY)


# --- HttpDelivery ---------------------------------------------------------------------------------------------

@dataclass
class FakeDeliveryService:
    """A delivery service that remembers every key it accepted.

    `script` holds answers for the first requests (status, headers, body); "drop" processes the batch and then
    closes the connection without answering (the answer got lost). Then it answers normally.
    """

    server: ThreadingHTTPServer
    seen: set[str] = field(default_factory=set)
    sent: list[str] = field(default_factory=list)  # every push it accepted, in order (a push sent twice shows)
    script: list = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def process(self, payload: dict) -> dict:
        accepted, duplicates = [], []
        for push in payload["pushes"]:
            key = push["idempotency_key"]
            (duplicates if key in self.seen else accepted).append(key)
            self.seen.add(key)
        self.sent.extend(accepted)
        return {"accepted": accepted, "duplicates": duplicates}


@pytest.fixture
def service(monkeypatch) -> Iterator[FakeDeliveryService]:
    bypass_proxies(monkeypatch)
    fake: FakeDeliveryService

    def respond(request: dict) -> Response:
        with fake.lock:
            fake.requests.append(request)
            step = fake.script.pop(0) if fake.script else None
            if step == "drop":
                fake.process(json.loads(request["body"]))
                return None
            if step is None:
                status, headers, body = 200, {}, json.dumps(fake.process(json.loads(request["body"]))).encode()
            else:
                status, headers, body = step
        return status, {**headers, "Content-Type": "application/json"}, body

    with serve(respond) as server:
        fake = FakeDeliveryService(server)
        yield fake


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Record backoff delays instead of sleeping."""
    delays: list[float] = []
    monkeypatch.setattr(delivery.time, "sleep", delays.append)
    return delays


def client(service: FakeDeliveryService, **kwargs) -> HttpDelivery:
    options = {"token": TOKEN, "batch_size": 20, "timeout": 2.0, "retries": 4, "backoff": 0.01,
               "max_backoff": 0.05}
    return HttpDelivery(service.base_url, **{**options, **kwargs})


def test_http_delivery_sends_sorted_batches_with_the_contract(service):
    outbox = make_outbox(45)
    report = client(service).deliver(outbox, "MLB", DAY)
    assert report == delivery.DeliveryReport(f"{service.base_url}/v1/pushes:batch", pushes=45, accepted=45,
                                             duplicates=0, batches=3, retries=0)
    assert TOKEN not in report.target and TOKEN not in repr(client(service))
    bodies = [json.loads(r["body"]) for r in service.requests]
    assert [len(b["pushes"]) for b in bodies] == [20, 20, 5]
    keys = [p["idempotency_key"] for b in bodies for p in b["pushes"]]
    assert keys == sorted(outbox["idempotency_key"])
    for request, body in zip(service.requests, bodies):
        assert request["path"] == "/v1/pushes:batch"
        assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
        batch_keys = sorted(p["idempotency_key"] for p in body["pushes"])
        assert request["headers"]["Idempotency-Key"] == hashlib.sha256("\n".join(batch_keys).encode()).hexdigest()
        assert (body["country"], body["date"]) == ("MLB", "2026-09-01")
    push = bodies[0]["pushes"][0]
    assert list(push) == list(outbox.columns)  # every column passed through
    row = outbox.set_index("idempotency_key").loc[push["idempotency_key"]]
    assert push["send_date"] == "2026-09-01" and push["user_id"] == row["user_id"]
    assert isinstance(push["send_hour_local"], int)
    nulls = [p for b in bodies for p in b["pushes"] if p["coupon_code"] is None]
    assert nulls and all(p["coupon_value"] is None for p in nulls)


def test_no_authorization_header_without_a_token(service):
    client(service, token=None).deliver(make_outbox(3), "MLB", DAY)
    assert "Authorization" not in service.requests[0]["headers"]


def test_delivering_twice_sends_each_push_once(service):
    outbox = make_outbox(45)
    first = client(service).deliver(outbox, "MLB", DAY)
    second = client(service).deliver(outbox.sample(frac=1.0, random_state=7), "MLB", DAY)
    assert (first.accepted, first.duplicates) == (45, 0)
    assert (second.pushes, second.accepted, second.duplicates) == (45, 0, 45)
    assert len(service.requests) == 6  # every push reached the server twice...
    assert sorted(service.sent) == sorted(outbox["idempotency_key"])  # ...and was accepted once
    # the same outbox makes the same batches, whatever its row order
    assert [r["body"] for r in service.requests[:3]] == [r["body"] for r in service.requests[3:]]


def test_5xx_are_retried_with_identical_batches(service):
    service.script = [(503, {}, b'{"error": "overloaded"}')] * 3
    outbox = make_outbox(30)
    report = client(service).deliver(outbox, "MLB", DAY)
    assert (report.accepted, report.duplicates, report.batches, report.retries) == (30, 0, 2, 3)
    assert sorted(service.sent) == sorted(outbox["idempotency_key"])
    first_batch = service.requests[:4]  # three 503s, then the answer
    assert len({r["body"] for r in first_batch}) == 1
    assert len({r["headers"]["Idempotency-Key"] for r in first_batch}) == 1
    assert len(service.requests) == 5


def test_a_lost_answer_is_retried_and_the_push_is_not_sent_twice(service):
    service.script = ["drop"]
    outbox = make_outbox(10)
    report = client(service).deliver(outbox, "MLB", DAY)
    assert report.retries == 1 and report.accepted + report.duplicates == 10
    assert sorted(service.sent) == sorted(outbox["idempotency_key"])  # each push once


def test_retryable_4xx(service, sleeps):
    service.script = [(408, {}, b""), (409, {}, b"in progress"), (429, {}, b"")]
    report = client(service, batch_size=100).deliver(make_outbox(5), "MLB", DAY)
    assert (report.accepted, report.retries) == (5, 3)


def test_400_raises_naming_the_batch(service):
    outbox = make_outbox(45)
    first_of_batch_2 = sorted(outbox["idempotency_key"])[20]
    service.script = [None, (400, {}, b'{"message": "coupon_code BTS21 is unknown"}')]
    service.script[0] = (200, {}, json.dumps({"accepted": sorted(outbox["idempotency_key"])[:20],
                                              "duplicates": []}).encode())
    with pytest.raises(DeliveryError, match="batch 2/3") as info:
        client(service).deliver(outbox, "MLB", DAY)
    error = info.value
    assert first_of_batch_2 in str(error) and "coupon_code BTS21 is unknown" in str(error) and "400" in str(error)
    assert (error.batch, error.first_key, error.status) == (2, first_of_batch_2, 400)
    assert len(service.requests) == 2  # not retried, and batch 3 never sent
    assert error.partial is not None and (error.partial.accepted, error.partial.batches) == (20, 1)
    assert TOKEN not in str(error)


def test_malformed_answer_raises(service):
    service.script = [(200, {}, b"<html>ok</html>")]
    with pytest.raises(DeliveryError, match="batch 1/1"):
        client(service).deliver(make_outbox(3), "MLB", DAY)


def test_exhausted_retries_raise(service, sleeps):
    service.script = [(502, {}, b"bad gateway")] * 10
    with pytest.raises(DeliveryError, match=r"batch 1/1 .* after 3 attempts: HTTP 502: bad gateway"):
        client(service, retries=2).deliver(make_outbox(3), "MLB", DAY)
    assert len(service.requests) == 3 and len(sleeps) == 2


def test_backoff_grows_and_respects_max_backoff(service, sleeps):
    service.script = [(503, {}, b"")] * 6
    report = client(service, retries=6, backoff=1.0, max_backoff=3.0).deliver(make_outbox(3), "MLB", DAY)
    assert report.retries == 6 and report.accepted == 3
    assert len(sleeps) == 6
    assert all(d <= 3.0 for d in sleeps)
    assert 1.0 <= sleeps[0] <= 1.1 and 2.0 <= sleeps[1] <= 2.2  # exponential, with at most 10 % jitter
    assert sleeps[2:] == [3.0] * 4


def test_retry_after_is_honoured_up_to_max_backoff(service, sleeps):
    service.script = [(429, {"Retry-After": "2"}, b""), (429, {"Retry-After": "3600"}, b""),
                      (503, {"Retry-After": "0"}, b"")]
    client(service, max_backoff=8.0).deliver(make_outbox(3), "MLB", DAY)
    assert sleeps == [2.0, 8.0, 0.0]


def test_unreachable_service_raises_after_retries(sleeps, monkeypatch):
    import socket

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DeliveryError, match="connection error"):
        HttpDelivery(f"http://127.0.0.1:{port}", retries=2, timeout=1).deliver(make_outbox(3), "MLB", DAY)
    assert len(sleeps) == 2


def test_empty_outbox_sends_nothing(service):
    report = client(service).deliver(make_outbox(0), "MLB", DAY)
    assert (report.pushes, report.batches) == (0, 0) and service.requests == []


def test_credentials_in_the_url_are_refused():
    with pytest.raises(ValueError, match="token"):
        HttpDelivery("https://user:pw@delivery.example")
    with pytest.raises(ValueError):
        HttpDelivery("ftp://delivery.example")


def test_records_write_json_values():
    frame = pd.DataFrame({
        "idempotency_key": ["a", "b"],
        "d": [dt.date(2026, 9, 1), None],
        "ts": pd.to_datetime(["2026-09-01 10:30", None]),
        "day": pd.to_datetime(["2026-09-01", "2026-09-02"]),
        "n": pd.array([1, None], dtype="Int64"),
        "flag": [True, False],
        "x": [1.5, np.nan],
    })
    assert outbox_records(frame) == [
        {"idempotency_key": "a", "d": "2026-09-01", "ts": "2026-09-01T10:30:00", "day": "2026-09-01", "n": 1,
         "flag": True, "x": 1.5},
        {"idempotency_key": "b", "d": None, "ts": None, "day": "2026-09-02", "n": None, "flag": False, "x": None},
    ]
