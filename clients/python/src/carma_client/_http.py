"""HTTP transport: one keep-alive connection per thread, timeouts, and bounded 503 retries.

Kept apart from ``client.py`` so that the operations read as a list of calls and the retry rules
live (and are tested) in one place. Only ``http.client`` is used, so the blocking client works
without any dependency. The asyncio transport (``aio.py``, on httpx) shares the request head and
body encoding (``prepare_request``, ``query_path``), the retry decision (``retry_wait``) and the
error mapping (``problem_error``) defined here.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlencode, urlsplit

from .errors import CarmaError, TransportError, error_class

#: Methods RFC 9110 defines as idempotent: repeating them has the effect of doing them once.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class RetryPolicy:
    """When to repeat a request that got ``503`` with ``Retry-After``.

    carmad answers 503 with ``Retry-After`` while starting (``not-ready``), while its storage is
    read-only and while shutting down: in every case the request did nothing, and the server says
    when to come back. Waiting that long is cheaper for both sides than failing the caller's
    pipeline. The bounds keep a client from hanging: at most ``max_retries`` repeats, and never
    more than ``max_total_wait`` seconds of sleeping in all; a ``Retry-After`` that would break
    the budget is not waited for at all (the error is raised at once, carrying ``retry_after``).

    Only idempotent requests are repeated unless ``retry_non_idempotent`` is set, because a
    ``POST`` (``/dream``) that the server did act on before failing must not be sent twice by
    surprise. A 503 without ``Retry-After`` is not retried: the server gave no promise.
    A strict read of a blank fragment (503 with ``X-Fragment-Status: blank``) is never retried:
    the caller asked for a hard failure, and the rebuild may be far away.
    """

    max_retries: int = 3
    max_total_wait: float = 30.0
    retry_non_idempotent: bool = False


NO_RETRIES = RetryPolicy(max_retries=0)


@dataclass
class Response:
    """A complete HTTP answer; ``headers`` keys are lower-case (HTTP header names are not)."""

    status: int
    reason: str
    headers: Dict[str, str]
    body: bytes
    method: str = "GET"

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def retry_after(self) -> Optional[float]:
        return parse_retry_after(self.header("retry-after"))


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP-date (RFC 9110)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    delta = moment.timestamp() - (time.time() if now is None else now)
    return max(0.0, delta)


def query_path(path: str, query: Optional[Mapping[str, Any]] = None) -> str:
    """``path`` with its query string: None values left out, booleans as ``true``/``false``."""
    items: List[Tuple[str, str]] = []
    for key, value in (query or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        items.append((key, str(value)))
    return path + (("?" + urlencode(items)) if items else "")


def prepare_request(
    token: Optional[str],
    user_agent: str,
    headers: Optional[Mapping[str, str]],
    json_body: Any,
    raw_body: Optional[bytes],
) -> Tuple[Dict[str, str], Optional[bytes]]:
    """The headers and body bytes of a request, for both transports (``headers`` win)."""
    body: Optional[bytes] = raw_body
    all_headers = {"Accept": "application/json, application/problem+json;q=0.9, */*;q=0.1",
                   "User-Agent": user_agent}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    if json_body is not None:
        body = json.dumps(json_body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    return all_headers, body


def retry_wait(response: Response, policy: RetryPolicy, idempotent: bool, attempt: int, waited: float) -> Optional[float]:
    """Seconds to sleep before repeating ``response``'s request, or None to return it (both transports)."""
    if response.status != 503 or attempt >= policy.max_retries:
        return None
    if not idempotent and not policy.retry_non_idempotent:
        return None
    if (response.header("x-fragment-status") or "").lower() == "blank":
        return None
    wait = response.retry_after
    if wait is None or waited + wait > policy.max_total_wait:
        return None
    return wait


def problem_error(response: Response, hint: Optional[str] = None) -> CarmaError:
    """Builds the typed exception for an error response.

    The problem document decides when there is one. ``HEAD`` answers and libmicrohttpd's own
    414/431 pages have no problem body; then ``hint`` (a problem type the operation knows the
    status means, e.g. ``fragment-not-found`` for a 404 of ``HEAD /fragments/{id}``) picks the
    class, and ``type`` stays ``about:blank`` because the server did not say more.
    """
    problem: Dict[str, Any] = {}
    content_type = (response.header("content-type") or "").split(";")[0].strip().lower()
    if response.body and content_type in ("application/problem+json", "application/json"):
        try:
            parsed = response.json()
            if isinstance(parsed, dict):
                problem = parsed
        except ValueError:
            problem = {}
    problem_type = problem.get("type") if isinstance(problem.get("type"), str) else None
    cls = error_class(problem_type or hint, response.status)
    detail = problem.get("detail")
    if not isinstance(detail, str):
        detail = None if problem else (response.text.strip()[:200] or None)
    title = problem.get("title") if isinstance(problem.get("title"), str) else response.reason
    return cls(
        type=problem_type or "about:blank",
        status=response.status,
        title=title or "",
        detail=detail,
        problem=problem,
        headers=response.headers,
        retry_after=response.retry_after,
    )


@dataclass
class Transport:
    """Sends requests to one carmad base URL.

    A connection is kept per thread (``http.client`` connections are not thread-safe, and
    reconnecting for every call would double the latency of small requests). A kept-alive
    connection the server closed meanwhile is reopened once, for idempotent requests only.
    """

    base_url: str
    token: Optional[str] = None
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    user_agent: str = "carma-client-python"
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be http(s)://host[:port], got {self.base_url!r}")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._local = threading.local()

    # -- connections -----------------------------------------------------------------------

    def _connection(self) -> Tuple[http.client.HTTPConnection, bool]:
        """The thread's connection, and whether it is reused (may have been closed by the peer)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, True
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout)
        self._local.conn = conn
        return conn, False

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def close(self) -> None:
        """Closes this thread's connection (others close when their threads end)."""
        self._drop_connection()

    # -- requests --------------------------------------------------------------------------

    def url_path(self, path: str, query: Optional[Mapping[str, Any]] = None) -> str:
        return self._prefix + query_path(path, query)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        json_body: Any = None,
        raw_body: Optional[bytes] = None,
        idempotent: Optional[bool] = None,
        retry: Optional[RetryPolicy] = None,
    ) -> Response:
        """Sends one request, repeating it after 503 + ``Retry-After`` as ``retry`` allows.

        Returns every answer, errors included: the caller decides what is an error (a 304 or a
        blank stub is not). ``idempotent`` defaults to the method's RFC 9110 semantics.
        """
        policy = retry or self.retry
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        all_headers, body = prepare_request(self.token, self.user_agent, headers, json_body, raw_body)
        target = self.url_path(path, query)

        waited = 0.0
        attempt = 0
        while True:
            response = self._send(method, target, all_headers, body, idempotent)
            wait = retry_wait(response, policy, idempotent, attempt, waited)
            if wait is None:
                return response
            self.sleep(wait)
            waited += wait
            attempt += 1

    def _send(self, method: str, target: str, headers: Mapping[str, str], body: Optional[bytes], idempotent: bool) -> Response:
        for reconnect in (False, True):
            conn, reused = self._connection()
            try:
                try:
                    conn.request(method, target, body=body, headers=dict(headers))
                except (BrokenPipeError, ConnectionResetError):
                    # carmad answers 413 from Content-Length and closes without reading the body;
                    # the answer may already be waiting even though sending the rest failed.
                    if body is None:
                        raise
                raw = conn.getresponse()
                data = raw.read()
                response = Response(
                    status=raw.status,
                    reason=raw.reason,
                    headers={k.lower(): v for k, v in raw.getheaders()},
                    body=data,
                    method=method,
                )
                if raw.will_close:
                    self._drop_connection()
                return response
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, http.client.BadStatusLine) as exc:
                self._drop_connection()
                # A kept-alive connection the server closed while idle fails on first use; the
                # request never reached it, but only an idempotent one is safe to send again.
                if reused and idempotent and not reconnect:
                    continue
                raise TransportError(f"{method} {target}: {exc.__class__.__name__}: {exc}") from exc
            except (socket.timeout, TimeoutError) as exc:
                self._drop_connection()
                raise TransportError(f"{method} {target}: timed out after {self.timeout} s") from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                raise TransportError(f"{method} {target}: {exc.__class__.__name__}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover
