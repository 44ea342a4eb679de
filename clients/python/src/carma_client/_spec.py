"""Every operation once: what to send (method, path, query, headers, body, whether it may be
repeated) and how to read the answer (the statuses that are not errors, the result parser).

Both clients run these ``Call`` values: ``CarmaClient`` over ``http.client``, ``AsyncCarmaClient``
over httpx. Neither builds a request or parses an answer itself, so the two cannot drift apart.
A ``Spec`` belongs to one namespace: its fragment operations put ``/namespaces/{ns}`` before
their paths (nothing for the root client, which is namespace ``default`` on the unprefixed
routes); the server-wide operations (dream engine, health, namespaces, tokens) ignore it.

Each method that performs a contract operation is registered with the operation's
``operationId``, method and path (``@operation``), so ``OPERATIONS`` is a table the test suite
compares with ``openapi.yaml``. A fragment operation is registered twice: once for its route in
``default`` (``putFragment``, ``PUT /fragments/{id}``) and once for the same route under
``/namespaces/{ns}`` (``putNamespaceFragment``), which ``NamespaceClient`` performs.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Dict, Generic, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union
from urllib.parse import quote

from ._http import Response, problem_error
from ._values import Condition, check_namespace, format_condition, fragment_body, numbers, sequence, strings
from .errors import CarmaError, FragmentBlank, PROBLEM_PREFIX, TransportError
from .models import (
    BLANK,
    MAX_BATCH_ITEMS,
    BatchItem,
    BatchResult,
    BlankStub,
    CycleReport,
    CycleSummary,
    DreamBudget,
    DreamStatus,
    Fragment,
    FragmentContext,
    FragmentHead,
    FragmentPage,
    Health,
    History,
    Namespace,
    NamespaceDeleted,
    NamespacePage,
    NamespaceToken,
    NotModified,
    PutResult,
    QueryResponse,
    ReadResult,
    Readiness,
    Topology,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Operation:
    """One contract operation and the client method that performs it (``python_name``, a method
    of ``CarmaClient``; for an operation under ``/namespaces/{ns}/`` also of ``NamespaceClient``)."""

    operation_id: str
    method: str
    path: str
    python_name: str


#: operationId -> the client method(s) covering it (``getTopology`` has a JSON and a DOT face).
OPERATIONS: Dict[str, List[Operation]] = {}

F = TypeVar("F", bound=Callable[..., Any])


def operation(operation_id: str, method: str, path: str, *, via: Optional[str] = None) -> Callable[[F], F]:
    """Registers a client method as covering the contract operation ``operation_id``.

    ``via`` names the client method when it is not the decorated one (``put_fragments`` sends
    what ``put_fragments_request`` builds, a chunk at a time). Decorators stack: the one nearest
    the ``def`` names the method's own operation in ``__carma_operation__``.
    """

    def register(function: F) -> F:
        OPERATIONS.setdefault(operation_id, []).append(Operation(operation_id, method, path, via or function.__name__))
        if not hasattr(function, "__carma_operation__"):
            setattr(function, "__carma_operation__", operation_id)
        return function

    return register


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its answer; a client sends it and calls ``result``.

    ``ok`` are the statuses that are answers, not errors (``parse`` gets those); for every other
    status ``result`` raises the problem's exception, with ``hint`` naming the problem type for
    bodiless answers (``HEAD``). ``idempotent`` None means the method's RFC 9110 meaning;
    ``retry_non_idempotent`` opts a ``POST`` into the 503 retries.
    """

    method: str
    path: str
    parse: Callable[[Response], T]
    ok: Tuple[int, ...] = (200,)
    query: Optional[Mapping[str, Any]] = None
    headers: Optional[Mapping[str, str]] = None
    json_body: Any = None
    raw_body: Optional[bytes] = None
    idempotent: Optional[bool] = None
    hint: Optional[Mapping[int, str]] = None
    retry_non_idempotent: bool = False

    def result(self, response: Response) -> T:
        if response.status not in self.ok:
            slug = (self.hint or {}).get(response.status)
            raise problem_error(response, PROBLEM_PREFIX + slug if slug else None)
        return self.parse(response)


# -- parsers shared by several calls ----------------------------------------------------------------


def _json(response: Response) -> Any:
    return response.json()


def _nothing(response: Response) -> None:
    return None


def _text(response: Response) -> str:
    return response.text


def _read_headers(strict: bool, if_none_match: Optional[Condition]) -> Dict[str, str]:
    headers: Dict[str, str] = {}
    if strict:
        headers["Prefer"] = "strict"
    if if_none_match is not None:
        headers["If-None-Match"] = format_condition(if_none_match)
    return headers


def _write_headers(if_match: Optional[Condition], if_none_match: Optional[Condition]) -> Dict[str, str]:
    headers: Dict[str, str] = {}
    if if_match is not None:
        headers["If-Match"] = format_condition(if_match)
    if if_none_match is not None:
        headers["If-None-Match"] = format_condition(if_none_match)
    return headers


def strict_blank(response: Response) -> CarmaError:
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


def _read_result(response: Response) -> ReadResult:
    if response.status == 304:
        return NotModified(etag=response.header("etag"))
    if response.status == 503:
        raise strict_blank(response)
    data = response.json()
    if data.get("status") == BLANK:
        return BlankStub.from_json(data, retry_after=response.retry_after)
    return Fragment.from_json(data, etag=response.header("etag"))


def _head_result(response: Response) -> FragmentHead:
    if response.status == 503:
        raise strict_blank(response)
    length = response.header("content-length")
    return FragmentHead(
        http_status=response.status,
        status=response.header("x-fragment-status"),
        etag=response.header("etag"),
        content_length=int(length) if length and length.isdigit() else None,
        retry_after=response.retry_after,
    )


def _put_result(response: Response) -> PutResult:
    etag = response.header("etag")
    return PutResult(fragment=Fragment.from_json(response.json(), etag=etag), created=response.status == 201,
                     etag=etag, location=response.header("location"))


def _export_lines(response: Response) -> List[Dict[str, Any]]:
    lines = [json.loads(line) for line in response.body.decode("utf-8").splitlines() if line.strip()]
    if not lines or lines[-1].get("carma_export") != "end":
        raise TransportError("the export ended without its closing line")
    return lines


def _import_counts(response: Response) -> Dict[str, int]:
    return {key: int(value) for key, value in response.json().items()}


def exact_content(fragment_id: str, result: ReadResult) -> str:
    """``get_content``'s check of a strict read: the text of an ``ok`` fragment, else ``CarmaError``."""
    if not isinstance(result, Fragment) or not result.is_exact:
        raise CarmaError(type="about:blank", title="fragment is not exact",
                         detail=f"{fragment_id} is {getattr(result, 'status', 'unknown')}")
    return result.content


def indexing_timeout_detail(timeout: float, last: Optional[Readiness]) -> str:
    """What ``IndexingTimeout`` says when ``wait_until_indexed`` gives up."""
    if last is None:
        return f"the server was not ready within {timeout} s"
    return (f"after {timeout} s the embedding backlog is {last.embedding_backlog}"
            f"{'' if last.text_index_ready else ' and the text index is still loading'}"
            f" ({last.embedded} of {last.fragments} fragments embedded)")


def result_signature(build: Callable[..., Any]) -> inspect.Signature:
    """``build``'s signature as a client method shows it: ``-> PutResult`` for ``-> Call[PutResult]``."""
    signature = inspect.signature(build)
    returned = signature.return_annotation
    if isinstance(returned, str):
        match = re.fullmatch(r"Call\[(.*)\]", returned)
        if match:
            signature = signature.replace(return_annotation=match.group(1))
    return signature


def adopt_methods(cls: type) -> None:
    """Names the methods ``_sync``/``_async`` made in ``cls`` after it (``CarmaClient.query``,
    not ``Spec.query``) for tracebacks and ``help()``."""
    for name, value in vars(cls).items():
        if callable(value) and getattr(value, "__wrapped__", None) is not None and getattr(value, "__qualname__", "").startswith("Spec."):
            value.__qualname__ = f"{cls.__qualname__}.{name}"
            value.__module__ = cls.__module__


def batch_chunks(items: Sequence[Union[BatchItem, Mapping[str, Any]]], chunk_size: int = MAX_BATCH_ITEMS) -> List[List[Dict[str, Any]]]:
    """The items' JSON in requests of at most ``chunk_size`` (1 to 1000), every item checked first,
    so a bad item anywhere raises before the first request is sent."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or not 1 <= chunk_size <= MAX_BATCH_ITEMS:
        raise ValueError(f"chunk_size must be from 1 to {MAX_BATCH_ITEMS}, got {chunk_size!r}")
    listed = sequence("items", items, "[{'id': 'note-1', 'content': '...'}]")
    bodies = [BatchItem.coerce(item, position).to_json(position) for position, item in enumerate(listed)]
    return [bodies[start:start + chunk_size] for start in range(0, len(bodies), chunk_size)]


class Spec:
    """The calls of one namespace (None: ``default`` on the unprefixed routes)."""

    def __init__(self, namespace: Optional[str] = None) -> None:
        self.namespace = None if namespace is None else check_namespace(namespace)
        self.prefix = "" if namespace is None else "/namespaces/" + namespace

    def _id_path(self, fragment_id: str, suffix: str = "") -> str:
        # Valid ids never need encoding; quoting everything else means a stray "/" or "?" in an id
        # reaches the server as part of the id (and gets 400 invalid-id) instead of another route.
        return self.prefix + "/fragments/" + quote(fragment_id, safe="") + suffix

    # -- fragments ---------------------------------------------------------------------------

    @operation("putNamespaceFragment", "PUT", "/namespaces/{ns}/fragments/{id}")
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
    ) -> Call[PutResult]:
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
        body = fragment_body(repr(fragment_id), content, links=links, tags=tags, metadata=metadata,
                             embedding=embedding, ttl=ttl, expires_at=expires_at)
        return Call("PUT", self._id_path(fragment_id), _put_result, ok=(200, 201),
                    headers=_write_headers(if_match, if_none_match), json_body=body)

    @operation("getNamespaceFragment", "GET", "/namespaces/{ns}/fragments/{id}")
    @operation("getFragment", "GET", "/fragments/{id}")
    def get_fragment(self, fragment_id: str, *, strict: bool = False,
                     if_none_match: Optional[Condition] = None) -> Call[ReadResult]:
        """Reads a fragment: a ``Fragment``, a ``BlankStub`` if its payload is lost, or ``NotModified``.

        Blank is a normal answer (the pipeline keeps flowing); check ``isinstance(r, Fragment)``.
        With ``strict=True`` a blank raises ``FragmentBlank`` (503) instead, carrying the stub.
        ``NotModified`` only comes back when ``if_none_match`` names the current version.
        """
        return Call("GET", self._id_path(fragment_id), _read_result, ok=(200, 304, 503),
                    headers=_read_headers(strict, if_none_match))

    @operation("headNamespaceFragment", "HEAD", "/namespaces/{ns}/fragments/{id}")
    @operation("headFragment", "HEAD", "/fragments/{id}")
    def head_fragment(self, fragment_id: str, *, strict: bool = False,
                      if_none_match: Optional[Condition] = None) -> Call[FragmentHead]:
        """Whether a fragment exists and its status and version, without transferring content.

        A ``HEAD`` answer has no body, so every 404 is taken as ``FragmentNotFound``, also in a
        namespace that does not exist (``get_namespace`` tells the two apart).
        """
        return Call("HEAD", self._id_path(fragment_id), _head_result, ok=(200, 304, 503),
                    headers=_read_headers(strict, if_none_match),
                    hint={404: "fragment-not-found", 401: "unauthorized", 400: "invalid-id", 403: "forbidden"})

    @operation("deleteNamespaceFragment", "DELETE", "/namespaces/{ns}/fragments/{id}")
    @operation("deleteFragment", "DELETE", "/fragments/{id}")
    def delete_fragment(self, fragment_id: str, *, if_match: Optional[Condition] = None,
                        if_none_match: Optional[str] = None) -> Call[None]:
        """Deletes on purpose (never rebuilt); ``FragmentNotFound`` if it does not exist."""
        return Call("DELETE", self._id_path(fragment_id), _nothing, ok=(204,),
                    headers=_write_headers(if_match, if_none_match))

    @operation("listNamespaceFragments", "GET", "/namespaces/{ns}/fragments")
    @operation("listFragments", "GET", "/fragments")
    def list_fragments(self, *, status: Optional[str] = None, tag: Optional[str] = None,
                       limit: Optional[int] = None, cursor: Optional[str] = None) -> Call[FragmentPage]:
        """One page of summaries in id order; pass ``page.next_cursor`` as ``cursor`` to go on."""
        return Call("GET", self.prefix + "/fragments", lambda r: FragmentPage.from_json(r.json()),
                    query={"status": status, "tag": tag, "limit": limit, "cursor": cursor})

    @operation("putNamespaceFragments", "POST", "/namespaces/{ns}/fragments", via="put_fragments")
    @operation("putFragments", "POST", "/fragments", via="put_fragments")
    def put_fragments_request(self, bodies: List[Dict[str, Any]]) -> Call[BatchResult]:
        """One ``POST /fragments`` of at most 1000 checked item bodies (``batch_chunks``).

        Taken as idempotent, so repeated after a lost connection or a 503, only when every item
        has an id and none has ``if_match``: the server makes ids for items without one, so a
        repeat would store them twice; and a repeat of a conditional item that was written the
        first time reports 412 for a write that happened.
        """
        repeatable = all("id" in body and "if_match" not in body for body in bodies)
        return Call("POST", self.prefix + "/fragments", lambda r: BatchResult.from_json(r.json()),
                    json_body={"fragments": bodies}, idempotent=repeatable)

    @operation("getNamespaceFragmentHistory", "GET", "/namespaces/{ns}/fragments/{id}/history")
    @operation("getFragmentHistory", "GET", "/fragments/{id}/history")
    def get_history(self, fragment_id: str) -> Call[History]:
        """What happened to a fragment: created, lost (how found), queued, recovered or rebuilt."""
        return Call("GET", self._id_path(fragment_id, "/history"), lambda r: History.from_json(r.json()))

    @operation("getNamespaceFragmentContext", "GET", "/namespaces/{ns}/fragments/{id}/context")
    @operation("getFragmentContext", "GET", "/fragments/{id}/context")
    def get_context(self, fragment_id: str, *, k: Optional[int] = None) -> Call[FragmentContext]:
        """Links, backlinks and the ``k`` most similar fragments, each with its status."""
        return Call("GET", self._id_path(fragment_id, "/context"), lambda r: FragmentContext.from_json(r.json()),
                    query={"k": k})

    @operation("queryNamespaceFragments", "POST", "/namespaces/{ns}/query")
    @operation("queryFragments", "POST", "/query")
    def query(self, text: Optional[str] = None, *, embedding: Optional[Sequence[float]] = None,
              k: Optional[int] = None, tags: Optional[Sequence[str]] = None, mode: Optional[str] = None,
              status: Optional[Sequence[str]] = None, metadata: Optional[Mapping[str, Any]] = None,
              fusion: Optional[str] = None, min_score: Optional[float] = None) -> Call[QueryResponse]:
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
            body["embedding"] = numbers("embedding", embedding)
        if k is not None:
            body["k"] = k
        if tags is not None:
            body["tags"] = strings("tags", tags, "['pref']")
        if mode is not None:
            body["mode"] = mode
        if status is not None:
            body["status"] = strings("status", status, "['ok']")
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
        return Call("POST", self.prefix + "/query", lambda r: QueryResponse.from_json(r.json()),
                    json_body=body, idempotent=True)

    # -- export and import -------------------------------------------------------------------

    @operation("exportNamespaceFragments", "GET", "/namespaces/{ns}/export")
    @operation("exportFragments", "GET", "/export")
    def export_fragments(self) -> Call[List[Dict[str, Any]]]:
        """Every fragment of one consistent snapshot, as the export's NDJSON lines (dicts): a
        header (``carma_export: "header"``), one line per fragment in id order (a fragment as
        ``GET`` serves it, a blank as its stub facts), and a closing line with the count. Raises
        ``TransportError`` if the closing line is missing (the stream was cut). The whole answer is
        held in memory: for large stores use ``carma export``, which streams to a file.
        Lines of a namespace other than ``default`` carry its name in ``namespace``.
        """
        return Call("GET", self.prefix + "/export", _export_lines)

    @operation("importNamespaceFragments", "POST", "/namespaces/{ns}/import")
    @operation("importFragments", "POST", "/import")
    def import_fragments(self, lines: Sequence[Mapping[str, Any]]) -> Call[Dict[str, int]]:
        """Writes export lines (at most 1,000 fragments per call) at their own versions, each
        only where the store's version is lower; returns the counts ``imported``, ``unchanged``
        (the same version was there: a repeated import) and ``superseded`` (a newer one was).
        Safe to repeat after a failure: it is idempotent. The namespace is the client's (a
        line's own ``namespace`` member is ignored), so exporting one namespace and importing
        into another copies it.
        """
        items = sequence("lines", lines, "client.export_fragments()")
        for item in items:
            if not isinstance(item, Mapping):
                raise TypeError(f"lines must be a list of export lines (dicts); got an item {type(item).__name__}")
        body = "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in items).encode("utf-8")
        return Call("POST", self.prefix + "/import", _import_counts, raw_body=body,
                    headers={"Content-Type": "application/x-ndjson"}, idempotent=True)

    # -- topology ----------------------------------------------------------------------------

    @operation("getNamespaceTopology", "GET", "/namespaces/{ns}/topology")
    @operation("getTopology", "GET", "/topology")
    def topology(self, *, limit: Optional[int] = None, around: Optional[str] = None,
                 depth: Optional[int] = None, after: Optional[str] = None) -> Call[Topology]:
        """The link graph coloured by status, bounded by ``limit`` (``around`` + ``depth``)."""
        query = {"format": "json", "limit": limit, "around": around, "depth": depth, "after": after}
        return Call("GET", self.prefix + "/topology", lambda r: Topology.from_json(r.json()), query=query)

    @operation("getNamespaceTopology", "GET", "/namespaces/{ns}/topology")
    @operation("getTopology", "GET", "/topology")
    def topology_dot(self, *, limit: Optional[int] = None, around: Optional[str] = None,
                     depth: Optional[int] = None, after: Optional[str] = None) -> Call[str]:
        """The same graph as Graphviz DOT text (``digraph carma { ... }``), ready for ``dot -Tsvg``."""
        query = {"format": "dot", "limit": limit, "around": around, "depth": depth, "after": after}
        return Call("GET", self.prefix + "/topology", _text, query=query)

    # -- server-wide: dream engine, metrics, health (the namespace prefix does not apply) ------

    @operation("startDream", "POST", "/dream")
    def start_dream(self, budget: Optional[DreamBudget] = None, *, retry_on_unavailable: bool = False) -> Call[CycleSummary]:
        """Asks for a dream cycle now (or gets the one already running); returns at once.

        Not repeated after a 503 unless ``retry_on_unavailable``: it is a ``POST``. (A repeat
        would at worst return the running cycle, but that is the caller's call to make.)
        """
        body = budget.to_json() if budget is not None else None
        return Call("POST", "/dream", lambda r: CycleSummary.from_json(r.json(), location=r.header("location")),
                    ok=(202,), json_body=body or None, retry_non_idempotent=retry_on_unavailable)

    @operation("getDreamStatus", "GET", "/dream")
    def dream_status(self) -> Call[DreamStatus]:
        """The scheduler's state, the repair queue, scrub progress and the recent cycles."""
        return Call("GET", "/dream", lambda r: DreamStatus.from_json(r.json()))

    @operation("getDreamCycle", "GET", "/dream/{cycle}")
    def get_cycle(self, cycle_id: int) -> Call[CycleReport]:
        """A cycle's full report with its events (live while it runs)."""
        return Call("GET", f"/dream/{int(cycle_id)}", lambda r: CycleReport.from_json(r.json()))

    @operation("getMetrics", "GET", "/metrics")
    def metrics(self) -> Call[str]:
        """The Prometheus text exposition, unparsed (scrapers and ``prometheus_client`` parse it)."""
        return Call("GET", "/metrics", _text)

    @operation("getHealth", "GET", "/healthz")
    def healthz(self) -> Call[Health]:
        """Liveness: answers while the process serves HTTP."""
        return Call("GET", "/healthz", lambda r: Health(status=r.json()["status"]))

    @operation("getReadiness", "GET", "/readyz")
    def readyz(self) -> Call[Readiness]:
        """Readiness, with what retrieval can use (``state``: ``ready``, ``partial`` or
        ``text_only``); ``NotReady`` (after the retries allow) while starting or stopping."""
        return Call("GET", "/readyz", lambda r: Readiness.from_json(r.json()))

    # -- namespaces and tokens (server-wide; mostly the admin token's) ------------------------

    @operation("listNamespaces", "GET", "/namespaces")
    def list_namespaces(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Call[NamespacePage]:
        """One page of namespaces sorted by name, ``default`` included, with their usage (admin
        token; open when the server has no auth). ``page.next_cursor`` goes on."""
        return Call("GET", "/namespaces", lambda r: NamespacePage.from_json(r.json()),
                    query={"limit": limit, "cursor": cursor})

    @operation("getNamespace", "GET", "/namespaces/{ns}")
    def get_namespace(self, namespace: str) -> Call[Namespace]:
        """A namespace's usage, quota and creation time (admin token or one of its own);
        ``NamespaceNotFound`` if it does not exist."""
        name = check_namespace(namespace)
        return Call("GET", "/namespaces/" + name, lambda r: Namespace.from_json(r.json()))

    @operation("putNamespace", "PUT", "/namespaces/{ns}")
    def create_namespace(self, namespace: str, quota_fragments: Optional[int] = None,
                         quota_bytes: Optional[int] = None) -> Call[Namespace]:
        """Creates a namespace, or sets the quotas of an existing one (``PUT``, admin token).

        Without quotas no body is sent: the namespace is created if missing, otherwise left as
        it is. A quota given is sent; one left None is not sent. The server replaces the quota
        as a whole (a member not sent means no limit, on the servers seen so far), so to change
        one limit of a namespace that has both, pass both. ``Namespace.created`` says whether
        this call created it.
        """
        name = check_namespace(namespace)
        quota: Dict[str, int] = {}
        for key, value in (("fragments", quota_fragments), ("bytes", quota_bytes)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"quota_{key} must be a whole number >= 0, got {value!r}")
            quota[key] = value
        return Call("PUT", "/namespaces/" + name, lambda r: Namespace.from_json(r.json(), created=r.status == 201),
                    ok=(200, 201), json_body={"quota": quota} if quota else None)

    @operation("deleteNamespace", "DELETE", "/namespaces/{ns}")
    def delete_namespace(self, namespace: str) -> Call[NamespaceDeleted]:
        """Deletes a namespace (admin token): every fragment tombstoned, its tokens revoked, the
        name gone (``NamespaceNotFound`` afterwards). ``default`` cannot be deleted (400)."""
        name = check_namespace(namespace)

        def parse(response: Response) -> NamespaceDeleted:
            data = response.json()
            return NamespaceDeleted(name=data.get("name", name), deleted=int(data.get("deleted", 0)))

        return Call("DELETE", "/namespaces/" + name, parse)

    @operation("createNamespaceToken", "POST", "/namespaces/{ns}/tokens")
    def create_token(self, namespace: str, scope: str) -> Call[NamespaceToken]:
        """A new bearer token for ``namespace`` (admin token): ``scope`` ``"read"`` or ``"write"``
        (write includes read). The secret (``.token``) is in this answer only: keep it.
        ``AuthDisabled`` when the server runs without ``--auth-token-file``.

        Never repeated automatically (a ``POST``): a repeat would make a second token.
        """
        name = check_namespace(namespace)
        if scope not in ("read", "write"):
            raise ValueError(f"scope must be 'read' or 'write', got {scope!r}")
        return Call("POST", "/namespaces/" + name + "/tokens",
                    lambda r: NamespaceToken.from_json(r.json(), namespace=name), ok=(201,), json_body={"scope": scope})

    @operation("listNamespaceTokens", "GET", "/namespaces/{ns}/tokens")
    def list_tokens(self, namespace: str) -> Call[List[NamespaceToken]]:
        """The namespace's tokens (id, scope, creation time; never the secrets), admin token."""
        name = check_namespace(namespace)
        return Call("GET", "/namespaces/" + name + "/tokens",
                    lambda r: [NamespaceToken.from_json(t, namespace=name) for t in r.json().get("tokens", [])])

    @operation("revokeNamespaceToken", "DELETE", "/namespaces/{ns}/tokens/{id}")
    def revoke_token(self, namespace: str, token_id: str) -> Call[None]:
        """Revokes a token at once (admin token); requests with it get 401 afterwards."""
        name = check_namespace(namespace)
        if not isinstance(token_id, str) or not token_id:
            raise ValueError(f"token_id must be a non-empty str (a NamespaceToken's id), got {token_id!r}")
        return Call("DELETE", "/namespaces/" + name + "/tokens/" + quote(token_id, safe=""), _nothing, ok=(204,))
