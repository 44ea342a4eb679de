"""The synchronous client, on ``http.client``: ``CarmaClient`` and its ``NamespaceClient``s.

The requests and the parsing of their answers live in ``_spec.py`` (shared with the asyncio
client); the methods here only send those calls, plus the few operations made of several
requests (paging, batch splitting, polling).
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, TypeVar, Union, cast

from ._http import RetryPolicy, Transport
from ._spec import (
    OPERATIONS,
    Call,
    Operation,
    Spec,
    adopt_methods,
    batch_chunks,
    exact_content,
    indexing_timeout_detail,
    operation,
    result_signature,
)
from ._values import Condition, check_namespace, format_condition
from .errors import CarmaError, IndexingTimeout, NotReady
from .models import (
    MAX_BATCH_ITEMS,
    BatchItem,
    BatchResult,
    CycleReport,
    DreamBudget,
    FragmentSummary,
    Namespace,
    Readiness,
)

if TYPE_CHECKING:  # pragma: no cover - typing_extensions' ParamSpec is for the type checker only
    from typing_extensions import Concatenate, ParamSpec

    P = ParamSpec("P")

__all__ = ["CarmaClient", "NamespaceClient", "OPERATIONS", "Operation", "Condition", "format_condition", "operation"]

T = TypeVar("T")


def _sync(build: "Callable[Concatenate[Spec, P], Call[T]]") -> "Callable[Concatenate[Any, P], T]":
    """A client method that builds ``build``'s call with the client's ``Spec`` and sends it; it
    keeps ``build``'s name, docstring and parameters (``help()`` shows them)."""

    @functools.wraps(build)
    def method(self: "_SyncOperations", *args: Any, **kwargs: Any) -> Any:
        return self._run(build(self._spec, *args, **kwargs))

    setattr(method, "__signature__", result_signature(build))
    return cast("Callable[Concatenate[Any, P], T]", method)


class _SyncOperations:
    """The fragment operations of one namespace, for ``CarmaClient`` (namespace ``default``, the
    unprefixed routes) and ``NamespaceClient`` (``/namespaces/{ns}/...``) alike."""

    _http: Transport
    _spec: Spec
    _headers: Dict[str, str]

    def _run(self, call: Call[T]) -> T:
        """Sends ``call`` and reads its answer (raising the typed error for an error status)."""
        retry: Optional[RetryPolicy] = None
        if call.retry_non_idempotent:
            base = self._http.retry
            retry = RetryPolicy(base.max_retries, base.max_total_wait, retry_non_idempotent=True)
        headers = dict(call.headers or {}, **self._headers)
        response = self._http.request(call.method, call.path, query=call.query, headers=headers,
                                      json_body=call.json_body, raw_body=call.raw_body,
                                      idempotent=call.idempotent, retry=retry)
        return call.result(response)

    # -- fragments: one request each ---------------------------------------------------------

    put_fragment = _sync(Spec.put_fragment)
    get_fragment = _sync(Spec.get_fragment)
    head_fragment = _sync(Spec.head_fragment)
    delete_fragment = _sync(Spec.delete_fragment)
    list_fragments = _sync(Spec.list_fragments)
    get_history = _sync(Spec.get_history)
    get_context = _sync(Spec.get_context)
    query = _sync(Spec.query)
    export_fragments = _sync(Spec.export_fragments)
    import_fragments = _sync(Spec.import_fragments)
    topology = _sync(Spec.topology)
    topology_dot = _sync(Spec.topology_dot)

    # -- fragments: several requests ---------------------------------------------------------

    def get_content(self, fragment_id: str) -> str:
        """The exact, verified text of an ``ok`` fragment, or an error (never a placeholder).

        For callers that must not act on anything but the original words: a blank raises
        ``FragmentBlank`` and a reconstructed fragment raises ``CarmaError``.
        """
        return exact_content(fragment_id, self.get_fragment(fragment_id, strict=True))

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

    def put_fragments(self, items: Sequence[Union[BatchItem, Mapping[str, Any]]], *,
                      chunk_size: int = MAX_BATCH_ITEMS) -> BatchResult:
        """Writes many fragments in few requests (``POST /fragments``); one result per item, in order.

        ``items`` are ``BatchItem``s or dicts with the same keys (``content`` required; ``id``,
        ``links``, ``tags``, ``metadata``, ``embedding``, ``ttl``, ``expires_at``, ``if_match``
        optional). Items without ``id`` get a server-made one (``result.ids``). Every item is
        checked before anything is sent (``TypeError``/``ValueError``, as ``put_fragment``).

        An item the server refuses does not raise: its result has the 4xx ``status`` and
        ``problem`` (``result.failures``; ``item.error()`` is the exception). The valid items of
        a request are written together.

        More than ``chunk_size`` items (at most 1000, the server's limit) are sent as several
        requests, one after the other, and their results joined; the requests are not one
        transaction. If one fails (an exception, not an item's problem), the earlier ones stay
        written: the exception's ``partial_batch`` holds their results. A request whose items
        all have ids and none ``if_match`` is repeated after a lost connection or a 503 (the
        server answers a repeat with the same ids and contents as unchanged); otherwise it is
        never repeated: the server would make new ids, or answer 412 for a conditional write it
        did the first time. An empty ``items`` sends nothing.
        """
        done: List[BatchResult] = []
        for chunk in batch_chunks(items, chunk_size):
            try:
                done.append(self._run(self._spec.put_fragments_request(chunk)))
            except CarmaError as error:
                if done:
                    error.partial_batch = BatchResult.merge(done)
                raise
        return BatchResult.merge(done)


class NamespaceClient(_SyncOperations):
    """The fragment operations of one namespace: ``client.namespace("alice")``.

    Every path is ``/namespaces/{name}/...``; the connection, timeouts and retry policy are the
    parent ``CarmaClient``'s (closing the parent closes it). ``token`` (a namespace token), when
    given, replaces the parent's token for this namespace's requests only.
    """

    def __init__(self, http: Transport, name: str, token: Optional[str] = None) -> None:
        self._http = http
        self._spec = Spec(name)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def name(self) -> str:
        return self._spec.namespace or ""

    def info(self) -> Namespace:
        """This namespace's usage and quota (``GET /namespaces/{name}``; its own token suffices)."""
        return self._run(self._spec.get_namespace(self.name))

    def __repr__(self) -> str:
        return f"NamespaceClient({self.name!r})"


class CarmaClient(_SyncOperations):
    """A blocking client for one carmad server; its fragment operations are namespace ``default``.

    ``token`` (or ``token_file``) is sent as ``Authorization: Bearer`` on every request, so a
    server with ``--protect-reads`` works too. ``timeout`` bounds each socket operation.
    ``retry`` decides when a ``503`` with ``Retry-After`` is repeated (see ``RetryPolicy``).
    Safe to share between threads: each thread gets its own keep-alive connection.
    ``transport`` replaces the ``http.client`` transport (tests pass a fake one).
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
        transport: Optional[Transport] = None,
    ) -> None:
        if token is None and token_file is not None:
            with open(token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        self._http = transport if transport is not None else Transport(
            base_url=base_url, token=token, timeout=timeout, retry=retry if retry is not None else RetryPolicy(),
            sleep=sleep)
        self._spec = Spec()
        self._headers = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "CarmaClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def namespace(self, name: str, *, token: Optional[str] = None) -> NamespaceClient:
        """A client for namespace ``name`` sharing this client's connection (``ValueError`` for a
        name the server would refuse: 1 to 200 of ``[A-Za-z0-9._~-]``, not starting with ``.``).
        ``token``: a namespace token to use instead of this client's for its requests."""
        return NamespaceClient(self._http, check_namespace(name), token=token)

    # -- namespaces and tokens ---------------------------------------------------------------

    list_namespaces = _sync(Spec.list_namespaces)
    get_namespace = _sync(Spec.get_namespace)
    create_namespace = _sync(Spec.create_namespace)
    delete_namespace = _sync(Spec.delete_namespace)
    create_token = _sync(Spec.create_token)
    list_tokens = _sync(Spec.list_tokens)
    revoke_token = _sync(Spec.revoke_token)

    def iter_namespaces(self, *, page_size: int = 100) -> Iterator[Namespace]:
        """Every namespace, sorted by name, fetching pages lazily."""
        cursor: Optional[str] = None
        while True:
            page = self.list_namespaces(limit=page_size, cursor=cursor)
            yield from page.namespaces
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- dream engine ------------------------------------------------------------------------

    start_dream = _sync(Spec.start_dream)
    dream_status = _sync(Spec.dream_status)
    get_cycle = _sync(Spec.get_cycle)

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

    # -- metrics, health ---------------------------------------------------------------------

    metrics = _sync(Spec.metrics)
    healthz = _sync(Spec.healthz)
    readyz = _sync(Spec.readyz)

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
                raise IndexingTimeout(indexing_timeout_detail(timeout, last), readiness=last)
            time.sleep(max(0.0, min(poll, deadline - time.monotonic())))


for _cls in (_SyncOperations, NamespaceClient, CarmaClient):
    adopt_methods(_cls)
