"""Retries after 503 + Retry-After, against a tiny local stub server (no carmad needed)."""

from __future__ import annotations

import email.utils
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List, Optional, Tuple

import pytest

from carma_client import (
    NO_RETRIES,
    CarmaClient,
    NotReady,
    ReadOnlyStorage,
    RetryPolicy,
    TransportError,
    Unavailable,
)

READY = {"status": "ready", "fragments": 0, "pending_writes": 0}
CYCLE = {"id": 7, "trigger": "manual", "state": "running", "started_at": "2026-11-30T10:00:00.000Z",
         "finished_at": None, "duration_ms": 0, "budget": {"max_repairs": 1, "max_seconds": 1, "scrub_fragments": 0},
         "queue_at_start": 0, "scrubbed": 0, "phases": [], "detected": {}, "repairs": {}, "outcomes": {}}


class Stub:
    """Answers queued (status, headers, body) in order, then 200s; records what it was asked."""

    def __init__(self) -> None:
        self.answers: List[Tuple[int, dict, dict]] = []
        self.requests: List[Tuple[str, str, float]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                stub.requests.append((self.command, self.path, time.monotonic()))
                if stub.answers:
                    status, headers, body = stub.answers.pop(0)
                elif self.command == "POST":
                    status, headers, body = 202, {"Location": "/dream/7"}, CYCLE
                else:
                    status, headers, body = 200, {}, READY
                data = json.dumps(body).encode()
                self.send_response(status)
                kind = "application/problem+json" if status >= 400 else "application/json"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def unavailable(self, slug: str = "not-ready", retry_after: Optional[str] = "1") -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.answers.append((503, headers, {"type": f"urn:carma:problem:{slug}", "title": "Unavailable",
                                            "status": 503, "detail": "stub"}))


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = Stub()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_503_then_200_waits_for_retry_after(stub: Stub) -> None:
    stub.unavailable(retry_after="1")
    started = time.monotonic()
    assert CarmaClient(stub.url).readyz().status == "ready"
    elapsed = time.monotonic() - started
    assert len(stub.requests) == 2
    assert stub.requests[1][2] - stub.requests[0][2] >= 0.9, "waited the announced second"
    assert elapsed < 10


def test_retry_count_is_bounded(stub: Stub) -> None:
    for _ in range(5):
        stub.unavailable(retry_after="2")
    sleeps: List[float] = []
    client = CarmaClient(stub.url, retry=RetryPolicy(max_retries=2, max_total_wait=100), sleep=sleeps.append)
    with pytest.raises(NotReady) as error:
        client.readyz()
    assert sleeps == [2.0, 2.0] and len(stub.requests) == 3
    assert error.value.status == 503 and error.value.retry_after == 2.0
    assert error.value.type == "urn:carma:problem:not-ready"


def test_total_wait_is_bounded(stub: Stub) -> None:
    stub.unavailable("read-only-storage", retry_after="60")
    sleeps: List[float] = []
    client = CarmaClient(stub.url, retry=RetryPolicy(max_retries=5, max_total_wait=30), sleep=sleeps.append)
    with pytest.raises(ReadOnlyStorage) as error:
        client.readyz()
    assert sleeps == [], "a wait beyond the budget is not started at all"
    assert error.value.retry_after == 60.0 and len(stub.requests) == 1


def test_no_retry_without_retry_after_or_when_disabled(stub: Stub) -> None:
    stub.unavailable(retry_after=None)
    sleeps: List[float] = []
    with pytest.raises(Unavailable):
        CarmaClient(stub.url, sleep=sleeps.append).readyz()
    stub.unavailable()
    with pytest.raises(NotReady):
        CarmaClient(stub.url, retry=NO_RETRIES, sleep=sleeps.append).readyz()
    assert sleeps == [] and len(stub.requests) == 2


def test_http_date_retry_after(stub: Stub) -> None:
    stub.unavailable(retry_after=email.utils.formatdate(time.time() + 3, usegmt=True))
    sleeps: List[float] = []
    assert CarmaClient(stub.url, sleep=sleeps.append).readyz().status == "ready"
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 3.5


def test_post_is_not_retried_unless_the_caller_opts_in(stub: Stub) -> None:
    sleeps: List[float] = []
    client = CarmaClient(stub.url, sleep=sleeps.append)
    stub.unavailable("shutting-down")
    with pytest.raises(Unavailable):
        client.start_dream()
    assert sleeps == [] and [r[0] for r in stub.requests] == ["POST"]

    stub.unavailable("shutting-down")
    assert client.start_dream(retry_on_unavailable=True).id == 7
    assert sleeps == [1.0]

    # A client-wide opt-in works too.
    opted = CarmaClient(stub.url, retry=RetryPolicy(retry_non_idempotent=True), sleep=sleeps.append)
    stub.unavailable("shutting-down")
    assert opted.start_dream().location == "/dream/7"
    assert sleeps == [1.0, 1.0]

    # A query is a read sent as POST: repeated by default.
    stub.unavailable("not-ready")
    stub.answers.append((200, {}, {"results": [], "took_ms": 0.1, "index": {"ready": True, "fragments": 0, "terms": 0}}))
    assert client.query("anything").results == []
    assert sleeps == [1.0, 1.0, 1.0]


def test_connection_refused_is_a_transport_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransportError) as error:
        CarmaClient(f"http://127.0.0.1:{port}", timeout=2).healthz()
    assert error.value.status is None
