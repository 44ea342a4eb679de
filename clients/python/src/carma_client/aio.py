"""The asyncio client, on httpx: ``AsyncCarmaClient`` and its ``AsyncNamespaceClient``s.

The same calls as the blocking client (built and parsed in ``_spec.py``), the same errors and the
same retry policy: a ``503`` with ``Retry-After`` is waited for (without blocking the event loop)
and repeated for idempotent requests only, and a connection lost before an answer is retried once,
for idempotent requests only.

    async with AsyncCarmaClient("http://127.0.0.1:8080", token=TOKEN) as carma:
        await carma.put_fragment("note-1", "The build server moved to rack 4.")
        hits = await carma.namespace("alice").query("build server")
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    TypeVar,
    Union,
    cast,
)
from urllib.parse import urlsplit

import httpx

from ._http import IDEMPOTENT_METHODS, Response, RetryPolicy, prepare_request, query_path, retry_wait
from ._spec import Call, Spec, adopt_methods, batch_chunks, exact_content, indexing_timeout_detail, result_signature
from ._values import check_namespace
from .errors import CarmaError, IndexingTimeout, NotReady, TransportError
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

__all__ = ["AsyncCarmaClient", "AsyncNamespaceClient", "AsyncTransport"]

T = TypeVar("T")

#: Failures after which the request may not have reached the server's handler (a kept-alive
#: connection closed by the peer): repeated once, for idempotent requests only.
_LOST_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class AsyncTransport:
    """Sends requests to one carmad base URL over an ``httpx.AsyncClient`` (its connection pool).

    ``transport`` is handed to httpx (``httpx.MockTransport`` in tests); ``sleep`` waits out a
    ``Retry-After`` (``asyncio.sleep``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: Optional[str] = None,
        timeout: float = 30.0,
        retry: Optional[RetryPolicy] = None,
        user_agent: str = "carma-client-python",
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be http(s)://host[:port], got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.user_agent = user_agent
        self.sleep = sleep
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
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
        """``Transport.request`` for asyncio: every answer returned, 503s repeated as allowed."""
        policy = retry or self.retry
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        all_headers, body = prepare_request(self.token, self.user_agent, headers, json_body, raw_body)
        url = self.base_url + query_path(path, query)
        waited = 0.0
        attempt = 0
        while True:
            response = await self._send(method, url, all_headers, body, idempotent)
            wait = retry_wait(response, policy, idempotent, attempt, waited)
            if wait is None:
                return response
            await self.sleep(wait)
            waited += wait
            attempt += 1

    async def _send(self, method: str, url: str, headers: Mapping[str, str], body: Optional[bytes],
                    idempotent: bool) -> Response:
        for again in (False, True):
            try:
                answer = await self._client.request(method, url, content=body, headers=dict(headers))
            except httpx.TimeoutException as exc:
                raise TransportError(f"{method} {url}: timed out after {self.timeout} s") from exc
            except _LOST_CONNECTION as exc:
                if idempotent and not again:
                    continue
                raise TransportError(f"{method} {url}: {exc.__class__.__name__}: {exc}") from exc
            except httpx.HTTPError as exc:
                raise TransportError(f"{method} {url}: {exc.__class__.__name__}: {exc}") from exc
            return Response(status=answer.status_code, reason=answer.reason_phrase,
                            headers={k.lower(): v for k, v in answer.headers.items()},
                            body=answer.content, method=method)
        raise AssertionError("unreachable")  # pragma: no cover


def _async(build: "Callable[Concatenate[Spec, P], Call[T]]") -> "Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]":
    """An async client method sending ``build``'s call (name, docstring and parameters kept)."""

    @functools.wraps(build)
    async def method(self: "_AsyncOperations", *args: Any, **kwargs: Any) -> Any:
        return await self._run(build(self._spec, *args, **kwargs))

    setattr(method, "__signature__", result_signature(build))
    return cast("Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]", method)


class _AsyncOperations:
    """The fragment operations of one namespace (``AsyncCarmaClient``: ``default``)."""

    _http: AsyncTransport
    _spec: Spec
    _headers: Dict[str, str]

    async def _run(self, call: Call[T]) -> T:
        retry: Optional[RetryPolicy] = None
        if call.retry_non_idempotent:
            base = self._http.retry
            retry = RetryPolicy(base.max_retries, base.max_total_wait, retry_non_idempotent=True)
        headers = dict(call.headers or {}, **self._headers)
        response = await self._http.request(call.method, call.path, query=call.query, headers=headers,
                                            json_body=call.json_body, raw_body=call.raw_body,
                                            idempotent=call.idempotent, retry=retry)
        return call.result(response)

    put_fragment = _async(Spec.put_fragment)
    get_fragment = _async(Spec.get_fragment)
    head_fragment = _async(Spec.head_fragment)
    delete_fragment = _async(Spec.delete_fragment)
    list_fragments = _async(Spec.list_fragments)
    get_history = _async(Spec.get_history)
    get_context = _async(Spec.get_context)
    query = _async(Spec.query)
    export_fragments = _async(Spec.export_fragments)
    import_fragments = _async(Spec.import_fragments)
    topology = _async(Spec.topology)
    topology_dot = _async(Spec.topology_dot)

    async def get_content(self, fragment_id: str) -> str:
        """The exact text of an ``ok`` fragment, or an error (``CarmaClient.get_content``)."""
        return exact_content(fragment_id, await self.get_fragment(fragment_id, strict=True))

    async def iter_fragments(self, *, status: Optional[str] = None, tag: Optional[str] = None,
                             page_size: int = 100) -> AsyncIterator[FragmentSummary]:
        """Every matching summary, pages fetched lazily: ``async for s in client.iter_fragments()``."""
        cursor: Optional[str] = None
        while True:
            page = await self.list_fragments(status=status, tag=tag, limit=page_size, cursor=cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def put_fragments(self, items: Sequence[Union[BatchItem, Mapping[str, Any]]], *,
                            chunk_size: int = MAX_BATCH_ITEMS) -> BatchResult:
        """Batch write, as ``CarmaClient.put_fragments``: more than ``chunk_size`` (1000) items go
        as several requests in turn; a request is repeated only when all its items have ids and
        none ``if_match``; on an exception the earlier requests' results are in its
        ``partial_batch``."""
        done: List[BatchResult] = []
        for chunk in batch_chunks(items, chunk_size):
            try:
                done.append(await self._run(self._spec.put_fragments_request(chunk)))
            except CarmaError as error:
                if done:
                    error.partial_batch = BatchResult.merge(done)
                raise
        return BatchResult.merge(done)


class AsyncNamespaceClient(_AsyncOperations):
    """The fragment operations of one namespace: ``client.namespace("alice")`` (see ``NamespaceClient``)."""

    def __init__(self, http: AsyncTransport, name: str, token: Optional[str] = None) -> None:
        self._http = http
        self._spec = Spec(name)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def name(self) -> str:
        return self._spec.namespace or ""

    async def info(self) -> Namespace:
        """This namespace's usage and quota (``GET /namespaces/{name}``)."""
        return await self._run(self._spec.get_namespace(self.name))

    def __repr__(self) -> str:
        return f"AsyncNamespaceClient({self.name!r})"


class AsyncCarmaClient(_AsyncOperations):
    """An asyncio client for one carmad server, the counterpart of ``CarmaClient``.

    Use it as ``async with AsyncCarmaClient(url) as carma:`` (or call ``aclose()``). One
    ``httpx.AsyncClient`` (a connection pool) serves it and every ``namespace()`` of it, so
    concurrent calls (``asyncio.gather``) share connections. ``transport`` is passed to httpx
    (``httpx.MockTransport`` for tests); ``sleep`` waits out ``Retry-After``.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        *,
        token: Optional[str] = None,
        token_file: Optional[str] = None,
        timeout: float = 30.0,
        retry: Optional[RetryPolicy] = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        if token is None and token_file is not None:
            with open(token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        self._http = AsyncTransport(base_url, token=token, timeout=timeout, retry=retry, sleep=sleep,
                                    transport=transport)
        self._spec = Spec()
        self._headers = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncCarmaClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def namespace(self, name: str, *, token: Optional[str] = None) -> AsyncNamespaceClient:
        """A client for namespace ``name`` sharing this client's connections (``ValueError`` for an
        invalid name); ``token``: a namespace token used instead of this client's."""
        return AsyncNamespaceClient(self._http, check_namespace(name), token=token)

    list_namespaces = _async(Spec.list_namespaces)
    get_namespace = _async(Spec.get_namespace)
    create_namespace = _async(Spec.create_namespace)
    delete_namespace = _async(Spec.delete_namespace)
    create_token = _async(Spec.create_token)
    list_tokens = _async(Spec.list_tokens)
    revoke_token = _async(Spec.revoke_token)

    async def iter_namespaces(self, *, page_size: int = 100) -> AsyncIterator[Namespace]:
        """Every namespace, sorted by name, pages fetched lazily."""
        cursor: Optional[str] = None
        while True:
            page = await self.list_namespaces(limit=page_size, cursor=cursor)
            for namespace in page.namespaces:
                yield namespace
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    start_dream = _async(Spec.start_dream)
    dream_status = _async(Spec.dream_status)
    get_cycle = _async(Spec.get_cycle)

    async def wait_for_cycle(self, cycle_id: int, *, timeout: float = 300.0, poll: float = 0.05) -> CycleReport:
        """Polls a cycle until it is no longer running; ``TimeoutError`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            report = await self.get_cycle(cycle_id)
            if not report.running:
                return report
            if time.monotonic() >= deadline:
                raise TimeoutError(f"dream cycle {cycle_id} still running after {timeout} s")
            await asyncio.sleep(poll)

    async def dream(self, budget: Optional[DreamBudget] = None, *, timeout: float = 300.0) -> CycleReport:
        """Starts (or joins) a cycle and waits for its report."""
        cycle = await self.start_dream(budget)
        return await self.wait_for_cycle(cycle.id, timeout=timeout)

    metrics = _async(Spec.metrics)
    healthz = _async(Spec.healthz)
    readyz = _async(Spec.readyz)

    async def wait_until_indexed(self, timeout: float = 60.0, poll: float = 0.2) -> Readiness:
        """Polls ``/readyz`` until queries see every fragment written so far (``CarmaClient.wait_until_indexed``)."""
        deadline = time.monotonic() + timeout
        last: Optional[Readiness] = None
        while True:
            try:
                last = await self.readyz()
                if last.indexed:
                    return last
            except NotReady:
                pass
            if time.monotonic() >= deadline:
                raise IndexingTimeout(indexing_timeout_detail(timeout, last), readiness=last)
            await asyncio.sleep(max(0.0, min(poll, deadline - time.monotonic())))


for _cls in (_AsyncOperations, AsyncNamespaceClient, AsyncCarmaClient):
    adopt_methods(_cls)
