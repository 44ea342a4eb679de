"""The synchronous client: one method per operation of ``openapi.yaml``.

Each method that performs an operation is registered with the operation's ``operationId``,
method and path (``@operation``), so ``OPERATIONS`` is a table the test suite compares with the
contract: when the server grows an operation, a test fails until the client covers it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, TypeVar, Union
from urllib.parse import quote

from ._http import RetryPolicy, Response, Transport, problem_error
from .errors import CarmaError, FragmentBlank, IndexingTimeout, NotReady, PROBLEM_PREFIX, TransportError
from .models import (
    BLANK,
    BlankStub,
    CycleReport,
    CycleSummary,
    DreamBudget,
    DreamStatus,
    Fragment,
    FragmentContext,
    FragmentHead,
    FragmentPage,
    FragmentSummary,
    Health,
    History,
    NotModified,
    PutResult,
    QueryResponse,
    ReadResult,
    Readiness,
    Topology,
)


@dataclass(frozen=True)
class Operation:
    """One contract operation and the client method that performs it."""

    operation_id: str
    method: str
    path: str
    python_name: str


#: operationId -> the client method(s) covering it (``getTopology`` has a JSON and a DOT face).
OPERATIONS: Dict[str, List[Operation]] = {}

F = TypeVar("F", bound=Callable[..., Any])


def operation(operation_id: str, method: str, path: str) -> Callable[[F], F]:
    """Registers a client method as covering the contract operation ``operation_id``."""

    def register(function: F) -> F:
        OPERATIONS.setdefault(operation_id, []).append(Operation(operation_id, method, path, function.__name__))
        setattr(function, "__carma_operation__", operation_id)
        return function

    return register


#: An entity-tag condition: a version number, a tag (``"17"``, ``W/"17"``), ``*``, or several.
Condition = Union[int, str, Sequence[Union[int, str]]]


def format_condition(condition: Condition) -> str:
    """``If-Match`` / ``If-None-Match`` value: versions become quoted tags, lists are joined."""
    items: Iterable[Union[int, str]]
    if isinstance(condition, (int, str)):
        items = [condition]
    else:
        items = condition
    parts = []
    for item in items:
        if isinstance(item, bool):
            raise TypeError("a condition is a version, an entity tag or '*', not a bool")
        if isinstance(item, int):
            parts.append(f'"{item}"')
        else:
            parts.append(item)
    return ", ".join(parts)


def _sequence(name: str, value: Any, example: str) -> List[Any]:
    """``value`` as a list, refusing what only looks like one: a ``str`` (or bytes) is iterable,
    but ``tags="pref"`` would otherwise be stored as ``['p', 'r', 'e', 'f']``."""
    if isinstance(value, (str, bytes, bytearray)):
        raise TypeError(f"{name} must be a list, not a {type(value).__name__}: write {name}=[{value!r}] "
                        f"(e.g. {name}={example})")
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list (e.g. {name}={example}), not {type(value).__name__}")
    return list(value)


def _strings(name: str, value: Any, example: str) -> List[str]:
    items = _sequence(name, value, example)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name} must be a list of strings (e.g. {name}={example}); got an item {item!r}")
    return items


def _numbers(name: str, value: Any) -> List[float]:
    items = _sequence(name, value, "[0.12, -0.5, 0.33]")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise TypeError(f"{name} must be a list of numbers; got an item {item!r}")
    return [float(x) for x in items]


def _id_path(fragment_id: str, suffix: str = "") -> str:
    # Valid ids never need encoding; quoting everything else means a stray "/" or "?" in an id
    # reaches the server as part of the id (and gets 400 invalid-id) instead of another route.
    return "/fragments/" + quote(fragment_id, safe="") + suffix


class CarmaClient:
    """A blocking client for one carmad server.

    ``token`` (or ``token_file``) is sent as ``Authorization: Bearer`` on every request, so a
    server with ``--protect-reads`` works too. ``timeout`` bounds each socket operation.
    ``retry`` decides when a ``503`` with ``Retry-After`` is repeated (see ``RetryPolicy``).
    Safe to share between threads: each thread gets its own keep-alive connection.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        *,
        token: Optional[str] = None,
        token_file: Optional[str] = None,
        timeout: float = 30.0,
        retry: Optional[RetryPolicy] = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if token is None and token_file is not None:
            with open(token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        self._http = Transport(base_url=base_url, token=token, timeout=timeout,
                               retry=retry if retry is not None else RetryPolicy(), sleep=sleep)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "CarmaClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, ok: Sequence[int] = (200,), hint: Optional[Mapping[int, str]] = None,
              **kwargs: Any) -> Response:
        """Sends a request and raises the typed error unless its status is in ``ok``."""
        response = self._http.request(method, path, **kwargs)
        if response.status not in ok:
            slug = (hint or {}).get(response.status)
            raise problem_error(response, PROBLEM_PREFIX + slug if slug else None)
        return response

    # -- fragments ---------------------------------------------------------------------------

    @operation("putFragment", "PUT", "/fragments/{id}")
    def put_fragment(
        self,
        fragment_id: str,
        content: str,
        *,
        links: Optional[Sequence[str]] = None,
        tags: Optional[Sequence[str]] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        embedding: Optional[Sequence[float]] = None,
        if_match: Optional[Condition] = None,
        if_none_match: Optional[str] = None,
        ttl: Optional[int] = None,
        expires_at: Optional[Union[datetime, str]] = None,
    ) -> PutResult:
        """Creates or replaces a fragment; returns once the write is durable.

        ``if_match`` (a version, a tag, ``*``, or several) and ``if_none_match="*"`` make the
        write conditional: ``PreconditionFailed`` (with ``current_version``) when it does not
        hold, so concurrent writers never overwrite each other silently.

        ``ttl`` (whole seconds) or ``expires_at`` (an aware ``datetime`` or an RFC 3339 string),
        not both, make the fragment expire: afterwards reads raise ``FragmentNotFound`` and the
        next compaction deletes it. An expiry not in the future raises ``InvalidRequest``.

        Refused before sending: empty ``content`` (``ValueError``; the server answers 400 too),
        and a ``str`` where a list belongs (``tags="pref"``, ``links="a"``: ``TypeError``).
        """
        if not isinstance(content, str):
            raise TypeError(f"content must be a str, not {type(content).__name__}")
        if content == "":
            raise ValueError(f"content of {fragment_id!r} is empty: a fragment needs some text (delete_fragment removes one)")
        if ttl is not None and expires_at is not None:
            raise ValueError("give ttl or expires_at, not both")
        body: Dict[str, Any] = {"content": content}
        if links is not None:
            body["links"] = _strings("links", links, "['note-2']")
        if tags is not None:
            body["tags"] = _strings("tags", tags, "['pref']")
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if embedding is not None:
            body["embedding"] = _numbers("embedding", embedding)
        if ttl is not None:
            body["ttl"] = int(ttl)
        if expires_at is not None:
            body["expires_at"] = _rfc3339(expires_at)
        headers: Dict[str, str] = {}
        if if_match is not None:
            headers["If-Match"] = format_condition(if_match)
        if if_none_match is not None:
            headers["If-None-Match"] = format_condition(if_none_match)
        response = self._call("PUT", _id_path(fragment_id), ok=(200, 201), headers=headers, json_body=body)
        etag = response.header("etag")
        return PutResult(fragment=Fragment.from_json(response.json(), etag=etag), created=response.status == 201,
                         etag=etag, location=response.header("location"))

    @operation("getFragment", "GET", "/fragments/{id}")
    def get_fragment(self, fragment_id: str, *, strict: bool = False,
                     if_none_match: Optional[Condition] = None) -> ReadResult:
        """Reads a fragment: a ``Fragment``, a ``BlankStub`` if its payload is lost, or ``NotModified``.

        Blank is a normal answer (the pipeline keeps flowing); check ``isinstance(r, Fragment)``.
        With ``strict=True`` a blank raises ``FragmentBlank`` (503) instead, carrying the stub.
        ``NotModified`` only comes back when ``if_none_match`` names the current version.
        """
        response = self._call("GET", _id_path(fragment_id), ok=(200, 304, 503),
                              headers=self._read_headers(strict, if_none_match))
        if response.status == 304:
            return NotModified(etag=response.header("etag"))
        if response.status == 503:
            raise self._strict_blank(response)
        data = response.json()
        if data.get("status") == BLANK:
            return BlankStub.from_json(data, retry_after=response.retry_after)
        return Fragment.from_json(data, etag=response.header("etag"))

    def get_content(self, fragment_id: str) -> str:
        """The exact, verified text of an ``ok`` fragment, or an error (never a placeholder).

        For callers that must not act on anything but the original words: a blank raises
        ``FragmentBlank`` and a reconstructed fragment raises ``CarmaError``.
        """
        result = self.get_fragment(fragment_id, strict=True)
        if not isinstance(result, Fragment) or not result.is_exact:
            raise CarmaError(type="about:blank", title="fragment is not exact",
                             detail=f"{fragment_id} is {getattr(result, 'status', 'unknown')}")
        return result.content

    @operation("headFragment", "HEAD", "/fragments/{id}")
    def head_fragment(self, fragment_id: str, *, strict: bool = False,
                      if_none_match: Optional[Condition] = None) -> FragmentHead:
        """Whether a fragment exists and its status and version, without transferring content."""
        response = self._call("HEAD", _id_path(fragment_id), ok=(200, 304, 503),
                              headers=self._read_headers(strict, if_none_match),
                              hint={404: "fragment-not-found", 401: "unauthorized", 400: "invalid-id"})
        if response.status == 503:
            raise self._strict_blank(response)
        length = response.header("content-length")
        return FragmentHead(
            http_status=response.status,
            status=response.header("x-fragment-status"),
            etag=response.header("etag"),
            content_length=int(length) if length and length.isdigit() else None,
            retry_after=response.retry_after,
        )

    @operation("deleteFragment", "DELETE", "/fragments/{id}")
    def delete_fragment(self, fragment_id: str, *, if_match: Optional[Condition] = None,
                        if_none_match: Optional[str] = None) -> None:
        """Deletes on purpose (never rebuilt); ``FragmentNotFound`` if it does not exist."""
        headers: Dict[str, str] = {}
        if if_match is not None:
            headers["If-Match"] = format_condition(if_match)
        if if_none_match is not None:
            headers["If-None-Match"] = format_condition(if_none_match)
        self._call("DELETE", _id_path(fragment_id), ok=(204,), headers=headers)

    @operation("listFragments", "GET", "/fragments")
    def list_fragments(self, *, status: Optional[str] = None, tag: Optional[str] = None,
                       limit: Optional[int] = None, cursor: Optional[str] = None) -> FragmentPage:
        """One page of summaries in id order; pass ``page.next_cursor`` as ``cursor`` to go on."""
        response = self._call("GET", "/fragments",
                              query={"status": status, "tag": tag, "limit": limit, "cursor": cursor})
        return FragmentPage.from_json(response.json())

    def iter_fragments(self, *, status: Optional[str] = None, tag: Optional[str] = None,
                       page_size: int = 100) -> Iterator[FragmentSummary]:
        """Every matching summary, fetching pages lazily (constant memory over any store size)."""
        cursor: Optional[str] = None
        while True:
            page = self.list_fragments(status=status, tag=tag, limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    @operation("getFragmentHistory", "GET", "/fragments/{id}/history")
    def get_history(self, fragment_id: str) -> History:
        """What happened to a fragment: created, lost (how found), queued, recovered or rebuilt."""
        return History.from_json(self._call("GET", _id_path(fragment_id, "/history")).json())

    @operation("getFragmentContext", "GET", "/fragments/{id}/context")
    def get_context(self, fragment_id: str, *, k: Optional[int] = None) -> FragmentContext:
        """Links, backlinks and the ``k`` most similar fragments, each with its status."""
        return FragmentContext.from_json(self._call("GET", _id_path(fragment_id, "/context"), query={"k": k}).json())

    @operation("queryFragments", "POST", "/query")
    def query(self, text: Optional[str] = None, *, embedding: Optional[Sequence[float]] = None,
              k: Optional[int] = None, tags: Optional[Sequence[str]] = None, mode: Optional[str] = None,
              status: Optional[Sequence[str]] = None, metadata: Optional[Mapping[str, Any]] = None,
              fusion: Optional[str] = None, min_score: Optional[float] = None) -> QueryResponse:
        """Top-``k`` fragments by words and meaning (``mode`` ``"hybrid"``, the default), by words
        alone (``"text"``) or by meaning alone (``"vector"``); filtered by ``tags`` (all of them),
        ``status`` (any of them) and ``metadata`` (top-level members equal). Blank hits are flagged,
        without content; the response's ``signals`` and ``notes`` say what the ranking used.

        ``min_score`` (0 to 1, sent only when given) leaves out hits scoring below it: a relevance
        cut-off (see the README on what scores mean; servers without it answer 400).
        ``tags`` and ``status`` are lists (``status=["ok"]``); a ``str`` raises ``TypeError``.

        Sent as idempotent although it is a ``POST``: a query changes nothing, so repeating it
        after a 503 is safe.
        """
        if text is None and embedding is None:
            raise ValueError("query needs text, embedding or both")
        body: Dict[str, Any] = {}
        if text is not None:
            body["text"] = text
        if embedding is not None:
            body["embedding"] = _numbers("embedding", embedding)
        if k is not None:
            body["k"] = k
        if tags is not None:
            body["tags"] = _strings("tags", tags, "['pref']")
        if mode is not None:
            body["mode"] = mode
        if status is not None:
            body["status"] = _strings("status", status, "['ok']")
        if min_score is not None:
            if isinstance(min_score, bool) or not isinstance(min_score, (int, float)):
                raise TypeError(f"min_score must be a number from 0 to 1, not {type(min_score).__name__}")
            if not 0.0 <= float(min_score) <= 1.0:
                raise ValueError(f"min_score must be from 0 to 1, got {min_score}")
            body["min_score"] = float(min_score)
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if fusion is not None:
            body["fusion"] = fusion
        return QueryResponse.from_json(self._call("POST", "/query", json_body=body, idempotent=True).json())

    # -- export and import -------------------------------------------------------------------

    @operation("exportFragments", "GET", "/export")
    def export_fragments(self) -> List[Dict[str, Any]]:
        """Every fragment of one consistent snapshot, as the export's NDJSON lines (dicts): a
        header (``carma_export: "header"``), one line per fragment in id order (a fragment as
        ``GET`` serves it, a blank as its stub facts), and a closing line with the count. Raises
        ``TransportError`` if the closing line is missing (the stream was cut). The whole answer is
        held in memory: for large stores use ``carma export``, which streams to a file.
        """
        response = self._call("GET", "/export")
        lines = [json.loads(line) for line in response.body.decode("utf-8").splitlines() if line.strip()]
        if not lines or lines[-1].get("carma_export") != "end":
            raise TransportError("the export ended without its closing line")
        return lines

    @operation("importFragments", "POST", "/import")
    def import_fragments(self, lines: Sequence[Mapping[str, Any]]) -> Dict[str, int]:
        """Writes export lines (at most 1,000 fragments per call) at their own versions, each
        only where the store's version is lower; returns the counts ``imported``, ``unchanged``
        (the same version was there: a repeated import) and ``superseded`` (a newer one was).
        Safe to repeat after a failure: it is idempotent.
        """
        items = _sequence("lines", lines, "client.export_fragments()")
        for item in items:
            if not isinstance(item, Mapping):
                raise TypeError(f"lines must be a list of export lines (dicts); got an item {type(item).__name__}")
        body = "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in items).encode("utf-8")
        response = self._call("POST", "/import", raw_body=body, headers={"Content-Type": "application/x-ndjson"}, idempotent=True)
        return {key: int(value) for key, value in response.json().items()}

    # -- dream engine ------------------------------------------------------------------------

    @operation("startDream", "POST", "/dream")
    def start_dream(self, budget: Optional[DreamBudget] = None, *, retry_on_unavailable: bool = False) -> CycleSummary:
        """Asks for a dream cycle now (or gets the one already running); returns at once.

        Not repeated after a 503 unless ``retry_on_unavailable``: it is a ``POST``. (A repeat
        would at worst return the running cycle, but that is the caller's call to make.)
        """
        body = budget.to_json() if budget is not None else None
        policy = None
        if retry_on_unavailable:
            base = self._http.retry
            policy = RetryPolicy(base.max_retries, base.max_total_wait, retry_non_idempotent=True)
        response = self._call("POST", "/dream", ok=(202,), json_body=body or None, retry=policy)
        return CycleSummary.from_json(response.json(), location=response.header("location"))

    @operation("getDreamStatus", "GET", "/dream")
    def dream_status(self) -> DreamStatus:
        """The scheduler's state, the repair queue, scrub progress and the recent cycles."""
        return DreamStatus.from_json(self._call("GET", "/dream").json())

    @operation("getDreamCycle", "GET", "/dream/{cycle}")
    def get_cycle(self, cycle_id: int) -> CycleReport:
        """A cycle's full report with its events (live while it runs)."""
        response = self._call("GET", f"/dream/{int(cycle_id)}")
        return CycleReport.from_json(response.json())

    def wait_for_cycle(self, cycle_id: int, *, timeout: float = 300.0, poll: float = 0.05) -> CycleReport:
        """Polls a cycle until it is no longer running; ``TimeoutError`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.get_cycle(cycle_id)
            if not report.running:
                return report
            if time.monotonic() >= deadline:
                raise TimeoutError(f"dream cycle {cycle_id} still running after {timeout} s")
            time.sleep(poll)

    def dream(self, budget: Optional[DreamBudget] = None, *, timeout: float = 300.0) -> CycleReport:
        """Starts (or joins) a cycle and waits for its report: the one call a script needs."""
        return self.wait_for_cycle(self.start_dream(budget).id, timeout=timeout)

    # -- topology, metrics, health -----------------------------------------------------------

    @operation("getTopology", "GET", "/topology")
    def topology(self, *, limit: Optional[int] = None, around: Optional[str] = None,
                 depth: Optional[int] = None, after: Optional[str] = None) -> Topology:
        """The link graph coloured by status, bounded by ``limit`` (``around`` + ``depth``)."""
        query = {"format": "json", "limit": limit, "around": around, "depth": depth, "after": after}
        return Topology.from_json(self._call("GET", "/topology", query=query).json())

    @operation("getTopology", "GET", "/topology")
    def topology_dot(self, *, limit: Optional[int] = None, around: Optional[str] = None,
                     depth: Optional[int] = None, after: Optional[str] = None) -> str:
        """The same graph as Graphviz DOT text (``digraph carma { ... }``), ready for ``dot -Tsvg``."""
        query = {"format": "dot", "limit": limit, "around": around, "depth": depth, "after": after}
        return self._call("GET", "/topology", query=query).text

    @operation("getMetrics", "GET", "/metrics")
    def metrics(self) -> str:
        """The Prometheus text exposition, unparsed (scrapers and ``prometheus_client`` parse it)."""
        return self._call("GET", "/metrics").text

    @operation("getHealth", "GET", "/healthz")
    def healthz(self) -> Health:
        """Liveness: answers while the process serves HTTP."""
        return Health(status=self._call("GET", "/healthz").json()["status"])

    @operation("getReadiness", "GET", "/readyz")
    def readyz(self) -> Readiness:
        """Readiness, with what retrieval can use (``state``: ``ready``, ``partial`` or
        ``text_only``); ``NotReady`` (after the retries allow) while starting or stopping."""
        return Readiness.from_json(self._call("GET", "/readyz").json())

    def wait_until_indexed(self, timeout: float = 60.0, poll: float = 0.2) -> Readiness:
        """Polls ``/readyz`` until the text index is ready and the embedding backlog is 0, so a
        query sees every fragment written before the call; returns that readiness.

        A server without an embedding model has no backlog (``state`` ``text_only``). A server
        still starting (``NotReady``) is polled on. ``IndexingTimeout`` (a ``CarmaError`` and a
        ``TimeoutError``) after ``timeout`` seconds, carrying the last readiness.
        """
        deadline = time.monotonic() + timeout
        last: Optional[Readiness] = None
        while True:
            try:
                last = self.readyz()
                if last.indexed:
                    return last
            except NotReady:
                pass
            if time.monotonic() >= deadline:
                if last is None:
                    detail = f"the server was not ready within {timeout} s"
                else:
                    detail = (f"after {timeout} s the embedding backlog is {last.embedding_backlog}"
                              f"{'' if last.text_index_ready else ' and the text index is still loading'}"
                              f" ({last.embedded} of {last.fragments} fragments embedded)")
                raise IndexingTimeout(detail, readiness=last)
            time.sleep(max(0.0, min(poll, deadline - time.monotonic())))

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _read_headers(strict: bool, if_none_match: Optional[Condition]) -> Dict[str, str]:
        headers: Dict[str, str] = {}
        if strict:
            headers["Prefer"] = "strict"
        if if_none_match is not None:
            headers["If-None-Match"] = format_condition(if_none_match)
        return headers

    @staticmethod
    def _strict_blank(response: Response) -> CarmaError:
        """A strict read of a blank: ``FragmentBlank`` carrying the stub, or the server's problem."""
        if (response.header("x-fragment-status") or "").lower() != BLANK:
            return problem_error(response)
        stub = BlankStub.from_json(response.json(), retry_after=response.retry_after) if response.body else None
        error = FragmentBlank(
            type="about:blank", status=503, title="fragment is blank",
            detail=f"{stub.id} lost ({stub.reason}); {stub.rebuild.describe()}" if stub
            else "fragment is blank",
            headers=response.headers, retry_after=response.retry_after,
        )
        error.stub = stub
        return error


def _rfc3339(moment: Union[datetime, str]) -> str:
    """An aware ``datetime`` in RFC 3339 (UTC, milliseconds); a string is sent as given."""
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware (e.g. datetime.now(timezone.utc))")
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
