"""Namespaces, tokens, batch writes and the asyncio client, offline: both clients run against the
same fake server (``Fake``), the blocking one through a ``Transport`` whose ``_send`` answers from
it, the asyncio one through ``httpx.MockTransport``. So each test checks both clients send the
same requests (paths, bodies, headers), read the same answers and raise the same errors.

Lost connections are simulated with httpx errors for the asyncio client and with a real socket
server that closes a kept-alive connection for the blocking one (its reconnect logic lives in the
``http.client`` layer).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Type, Union
from urllib.parse import parse_qsl, urlsplit

import pytest

from carma_client import (
    MAX_BATCH_ITEMS,
    AuthDisabled,
    BatchItem,
    BatchResult,
    BatchTooLarge,
    CarmaClient,
    CarmaError,
    Conflict,
    Forbidden,
    Fragment,
    FragmentNotFound,
    InvalidRequest,
    NamespaceClient,
    NamespaceNotFound,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RetryPolicy,
    TransportError,
    Unauthorized,
)
from carma_client._http import Response, Transport

NOW = "2026-11-30T10:00:00.000Z"


def fragment_json(fid: str = "note-1", content: str = "rack 4", namespace: Optional[str] = None,
                  version: int = 1) -> Dict[str, Any]:
    body: Dict[str, Any] = {"id": fid}
    if namespace is not None:
        body["namespace"] = namespace
    body.update({"version": version, "content": content, "links": [], "tags": [], "metadata": {},
                 "size": len(content), "created_at": NOW, "updated_at": NOW, "status": "ok",
                 "checksum": "crc32c:00000000"})
    return body


def problem(slug: str, status: int, **extra: Any) -> Dict[str, Any]:
    return dict({"type": f"urn:carma:problem:{slug}", "title": slug.replace("-", " "), "status": status,
                 "detail": f"stub {slug}"}, **extra)


class Recorded:
    """One request as the server saw it."""

    def __init__(self, method: str, target: str, headers: Mapping[str, str], body: Optional[bytes]) -> None:
        parts = urlsplit(target)
        self.method = method
        self.path = parts.path
        self.query = dict(parse_qsl(parts.query))
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body or b""

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self) -> str:
        return f"{self.method} {self.path} {self.query or ''}"


Answer = Union[Tuple[int, Dict[str, str], Any], BaseException]


class Fake:
    """Answers queued answers in order (then ``default``); an exception queued is raised instead,
    as a lost connection. ``routes`` answer by (method, path) before the queue."""

    def __init__(self) -> None:
        self.requests: List[Recorded] = []
        self.answers: List[Answer] = []
        self.routes: Dict[Tuple[str, str], Callable[[Recorded], Answer]] = {}
        self.default: Answer = (200, {}, {})

    def answer(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def respond(self, request: Recorded) -> Tuple[int, Dict[str, str], bytes]:
        self.requests.append(request)
        route = self.routes.get((request.method, request.path))
        answer = route(request) if route else (self.answers.pop(0) if self.answers else self.default)
        if isinstance(answer, BaseException):
            raise answer
        status, headers, body = answer
        if isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
            kind = "text/plain"
        else:
            data = json.dumps(body).encode() if body is not None else b""
            kind = "application/problem+json" if status >= 400 else "application/json"
        all_headers = {"content-type": kind, "content-length": str(len(data))}
        all_headers.update({k.lower(): v for k, v in headers.items()})
        if request.method == "HEAD" or status in (204, 304):
            data = b""
        return status, all_headers, data


class FakeTransport(Transport):
    """The blocking transport with the network replaced by ``Fake`` (retries, headers and body
    encoding are the real ones)."""

    def __init__(self, fake: Fake, token: Optional[str] = None, sleeps: Optional[List[float]] = None) -> None:
        super().__init__(base_url="http://carma.test", token=token, sleep=(sleeps if sleeps is not None else []).append)
        self.fake = fake

    def _send(self, method: str, target: str, headers: Mapping[str, str], body: Optional[bytes], idempotent: bool) -> Response:
        try:
            status, headers_out, data = self.fake.respond(Recorded(method, target, headers, body))
        except ConnectionError as exc:  # what the real _send turns a failure into
            raise TransportError(f"{method} {target}: {exc}") from exc
        return Response(status=status, reason="", headers=headers_out, body=data, method=method)


# -- one way to run a call on either client -------------------------------------------------------


class Api:
    """Runs ``fn(client)`` on a fresh blocking or asyncio client talking to ``fake``."""

    def __init__(self, kind: str, fake: Fake) -> None:
        self.kind = kind
        self.fake = fake
        self.sleeps: List[float] = []

    def __call__(self, fn: Callable[[Any], Any], *, token: Optional[str] = None) -> Any:
        if self.kind == "sync":
            with CarmaClient(transport=FakeTransport(self.fake, token=token, sleeps=self.sleeps)) as client:
                return fn(client)
        return asyncio.run(self._async(fn, token))

    async def _async(self, fn: Callable[[Any], Any], token: Optional[str]) -> Any:
        import httpx

        from carma_client import AsyncCarmaClient

        def handler(request: httpx.Request) -> httpx.Response:
            target = request.url.raw_path.decode()  # path and query, as sent
            try:
                status, headers, data = self.fake.respond(Recorded(request.method, target, request.headers, request.content))
            except ConnectionError as exc:
                raise httpx.RemoteProtocolError(f"Server disconnected: {exc}", request=request) from exc
            return httpx.Response(status, headers=headers, content=data)

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        async with AsyncCarmaClient("http://carma.test", token=token, transport=httpx.MockTransport(handler),
                                    sleep=sleep) as client:
            result = fn(client)
            if inspect.isawaitable(result):
                result = await result
            elif inspect.isasyncgen(result):
                result = [item async for item in result]
            return result

    def iterate(self, fn: Callable[[Any], Any]) -> List[Any]:
        """Lists an iterator (blocking) or async iterator (asyncio) that ``fn`` returns."""
        if self.kind == "sync":
            return self(lambda c: list(fn(c)))
        return self(fn)  # _async drains async generators


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> Api:
    if request.param == "async":
        pytest.importorskip("httpx")
    return Api(request.param, Fake())


# -- namespace-scoped clients ---------------------------------------------------------------------

FRAGMENT_CALLS: List[Tuple[str, Callable[[Any], Any], str, str, Answer]] = [
    ("put_fragment", lambda c: c.put_fragment("n1", "text", tags=["t"]), "PUT", "/fragments/n1",
     (201, {"etag": '"1"'}, fragment_json("n1", "text"))),
    ("get_fragment", lambda c: c.get_fragment("n1"), "GET", "/fragments/n1", (200, {}, fragment_json("n1"))),
    ("head_fragment", lambda c: c.head_fragment("n1"), "HEAD", "/fragments/n1",
     (200, {"x-fragment-status": "ok", "etag": '"1"'}, fragment_json("n1"))),
    ("delete_fragment", lambda c: c.delete_fragment("n1"), "DELETE", "/fragments/n1", (204, {}, None)),
    ("list_fragments", lambda c: c.list_fragments(limit=5), "GET", "/fragments", (200, {}, {"items": [], "next_cursor": None})),
    ("get_history", lambda c: c.get_history("n1"), "GET", "/fragments/n1/history",
     (200, {}, {"id": "n1", "status": "ok", "version": 1, "events": []})),
    ("get_context", lambda c: c.get_context("n1", k=3), "GET", "/fragments/n1/context",
     (200, {}, {"id": "n1", "status": "ok", "links": [], "backlinks": [], "similar": []})),
    ("query", lambda c: c.query("rack", k=2), "POST", "/query",
     (200, {}, {"results": [], "took_ms": 0.1, "index": {"ready": True, "fragments": 0, "terms": 0}})),
    ("export_fragments", lambda c: c.export_fragments(), "GET", "/export",
     (200, {}, '{"carma_export":"header"}\n{"carma_export":"end","fragments":0}\n')),
    ("import_fragments", lambda c: c.import_fragments([{"id": "n1", "version": 1, "content": "x"}]), "POST", "/import",
     (200, {}, {"imported": 1, "unchanged": 0, "superseded": 0})),
    ("topology", lambda c: c.topology(limit=10), "GET", "/topology", (200, {}, {"nodes": [], "edges": [], "counts": {}})),
    ("topology_dot", lambda c: c.topology_dot(), "GET", "/topology", (200, {}, "digraph carma {}")),
    ("put_fragments", lambda c: c.put_fragments([{"id": "n1", "content": "x"}]), "POST", "/fragments",
     (200, {}, {"results": [{"id": "n1", "status": 201, "version": 1, "fragment_status": "ok"}],
                "created": 1, "updated": 0, "failed": 0})),
]


@pytest.mark.parametrize("name,call,method,path,answer", FRAGMENT_CALLS, ids=[c[0] for c in FRAGMENT_CALLS])
def test_fragment_calls_are_prefixed_in_a_namespace_and_not_in_the_root_client(
        api: Api, name: str, call: Callable[[Any], Any], method: str, path: str, answer: Answer) -> None:
    api.fake.default = answer
    api(call)
    api(lambda c: call(c.namespace("alice")))
    api(lambda c: call(c.namespace("default")))
    assert [(r.method, r.path) for r in api.fake.requests] == [
        (method, path), (method, "/namespaces/alice" + path), (method, "/namespaces/default" + path)]
    # The same body and query either way: only the path differs.
    first, second, _ = api.fake.requests
    assert (first.body, first.query) == (second.body, second.query)


def test_namespace_fragment_bodies_carry_the_namespace(api: Api) -> None:
    api.fake.answer((200, {"etag": '"3"'}, fragment_json("n1", "alice's", namespace="alice", version=3)),
                    (200, {}, fragment_json("n1", "the default one")))
    alice = api(lambda c: c.namespace("alice").get_fragment("n1"))
    plain = api(lambda c: c.get_fragment("n1"))
    assert isinstance(alice, Fragment) and alice.namespace == "alice" and alice.content == "alice's"
    assert isinstance(plain, Fragment) and plain.namespace == "default"


def test_every_fragment_method_exists_on_both_namespace_clients() -> None:
    names = {"put_fragment", "get_fragment", "get_content", "head_fragment", "delete_fragment", "list_fragments",
             "iter_fragments", "get_history", "get_context", "query", "export_fragments", "import_fragments",
             "topology", "topology_dot", "put_fragments"}
    client = CarmaClient("http://127.0.0.1:9")
    alice = client.namespace("alice")
    assert isinstance(alice, NamespaceClient) and alice.name == "alice"
    assert alice._http is client._http, "a namespace shares its parent's transport"
    for name in names:
        assert callable(getattr(alice, name)) and callable(getattr(client, name))
    assert not hasattr(alice, "start_dream") and not hasattr(alice, "create_namespace"), "server-wide calls stay on the root"


def test_the_asyncio_client_has_every_method_of_the_blocking_one_as_a_coroutine() -> None:
    pytest.importorskip("httpx")
    from carma_client import AsyncCarmaClient, AsyncNamespaceClient

    for blocking, asynchronous in ((CarmaClient, AsyncCarmaClient), (NamespaceClient, AsyncNamespaceClient)):
        public = {name for name in dir(blocking) if not name.startswith("_")}
        missing = sorted(name for name in public if not hasattr(asynchronous, name))
        assert missing in ([], ["close"]), f"{asynchronous.__name__} lacks {missing}"
        for name in public - {"close", "namespace", "name"}:
            method = getattr(asynchronous, name)
            assert inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method), name
            if inspect.iscoroutinefunction(method) and hasattr(getattr(blocking, name), "__wrapped__"):
                assert inspect.signature(method) == inspect.signature(getattr(blocking, name)), name
    assert inspect.signature(CarmaClient.query).return_annotation == "QueryResponse"


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "a b", "x" * 201, "caf\u00e9", "..", "a?b", "%41"])
def test_invalid_namespace_names_are_refused_before_sending(api: Api, name: str) -> None:
    for call in (lambda c: c.namespace(name), lambda c: c.get_namespace(name), lambda c: c.create_namespace(name),
                 lambda c: c.delete_namespace(name), lambda c: c.create_token(name, "read"),
                 lambda c: c.list_tokens(name), lambda c: c.revoke_token(name, "tok_1")):
        with pytest.raises(ValueError, match="invalid namespace name"):
            api(call)
    with pytest.raises(TypeError):
        api(lambda c: c.namespace(7))
    assert api.fake.requests == []


@pytest.mark.parametrize("name", ["a", "A-z_0.9~", "x" * 200, "default", "-", "~x", "a.b.c"])
def test_valid_namespace_names_are_used_as_they_are(api: Api, name: str) -> None:
    api.fake.default = (200, {}, {"items": [], "next_cursor": None})
    api(lambda c: c.namespace(name).list_fragments())
    assert api.fake.requests[0].path == f"/namespaces/{name}/fragments"


def test_a_namespace_token_replaces_the_parents_for_its_requests_only(api: Api) -> None:
    api.fake.default = (200, {}, {"items": [], "next_cursor": None})
    api(lambda c: c.list_fragments(), token="admin-secret")
    api(lambda c: c.namespace("alice", token="carma_ns_alice").list_fragments(), token="admin-secret")
    api(lambda c: c.namespace("bob").list_fragments(), token="admin-secret")
    assert [r.headers.get("authorization") for r in api.fake.requests] == [
        "Bearer admin-secret", "Bearer carma_ns_alice", "Bearer admin-secret"]


def test_iter_fragments_pages_within_the_namespace(api: Api) -> None:
    summary = {k: v for k, v in fragment_json("a").items() if k not in ("content", "metadata")}
    api.fake.answer((200, {}, {"items": [summary], "next_cursor": "a"}),
                    (200, {}, {"items": [dict(summary, id="b")], "next_cursor": None}))
    items = api.iterate(lambda c: c.namespace("alice").iter_fragments(page_size=1))
    assert [s.id for s in items] == ["a", "b"]
    assert [(r.path, r.query) for r in api.fake.requests] == [
        ("/namespaces/alice/fragments", {"limit": "1"}), ("/namespaces/alice/fragments", {"limit": "1", "cursor": "a"})]


def test_get_content_in_a_namespace_reads_strictly(api: Api) -> None:
    api.fake.default = (200, {}, fragment_json("n1", "exact words", namespace="alice"))
    assert api(lambda c: c.namespace("alice").get_content("n1")) == "exact words"
    assert api.fake.requests[0].headers.get("prefer") == "strict"


# -- namespace administration and tokens -----------------------------------------------------------

NAMESPACE = {"name": "alice", "fragments": 12, "bytes": 3456, "quota": {"fragments": 100, "bytes": None},
             "created_at": NOW}


def test_list_and_iter_namespaces(api: Api) -> None:
    api.fake.answer((200, {}, {"namespaces": [{"name": "alice", "fragments": 1, "bytes": 2},
                                              {"name": "default", "fragments": 3, "bytes": 4}], "next_cursor": "default"}),
                    (200, {}, {"namespaces": [{"name": "zed", "fragments": 0, "bytes": 0}], "next_cursor": None}))
    names = [n.name for n in api.iterate(lambda c: c.iter_namespaces(page_size=2))]
    assert names == ["alice", "default", "zed"]
    assert [(r.method, r.path, r.query) for r in api.fake.requests] == [
        ("GET", "/namespaces", {"limit": "2"}), ("GET", "/namespaces", {"limit": "2", "cursor": "default"})]
    api.fake.answer((200, {}, {"namespaces": [], "next_cursor": None}))
    page = api(lambda c: c.list_namespaces(limit=5, cursor="m"))
    assert page.namespaces == [] and page.next_cursor is None
    assert api.fake.requests[-1].query == {"limit": "5", "cursor": "m"}


def test_get_namespace(api: Api) -> None:
    api.fake.default = (200, {}, NAMESPACE)
    ns = api(lambda c: c.get_namespace("alice"))
    assert (ns.name, ns.fragments, ns.bytes) == ("alice", 12, 3456)
    assert ns.quota is not None and (ns.quota.fragments, ns.quota.bytes) == (100, None)
    assert ns.created_at is not None and ns.created_at.year == 2026 and ns.created is None
    info = api(lambda c: c.namespace("alice").info())
    assert info == ns
    assert [(r.method, r.path) for r in api.fake.requests] == [("GET", "/namespaces/alice")] * 2


def test_create_namespace_sends_quotas_only_when_given(api: Api) -> None:
    api.fake.answer((201, {}, NAMESPACE), (200, {}, NAMESPACE), (200, {}, NAMESPACE))
    created = api(lambda c: c.create_namespace("alice"))
    updated = api(lambda c: c.create_namespace("alice", quota_fragments=100, quota_bytes=10_000))
    api(lambda c: c.create_namespace("alice", quota_bytes=5))
    assert created.created is True and updated.created is False
    first, second, third = api.fake.requests
    assert (first.method, first.path, first.body) == ("PUT", "/namespaces/alice", b"")
    assert second.json() == {"quota": {"fragments": 100, "bytes": 10_000}}
    assert third.json() == {"quota": {"bytes": 5}}
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(ValueError):
            api(lambda c: c.create_namespace("alice", quota_fragments=bad))
    assert len(api.fake.requests) == 3


def test_delete_namespace(api: Api) -> None:
    api.fake.default = (200, {}, {"name": "alice", "deleted": 12})
    gone = api(lambda c: c.delete_namespace("alice"))
    assert (gone.name, gone.deleted) == ("alice", 12)
    assert (api.fake.requests[0].method, api.fake.requests[0].path) == ("DELETE", "/namespaces/alice")


def test_tokens(api: Api) -> None:
    secret = "carma_ns_0123456789abcdef"
    api.fake.answer((201, {}, {"id": "tok_1", "token": secret, "scope": "write", "namespace": "alice"}),
                    (200, {}, {"tokens": [{"id": "tok_1", "scope": "write", "created_at": NOW},
                                          {"id": "tok_2", "scope": "read", "created_at": NOW}]}),
                    (204, {}, None))
    token = api(lambda c: c.create_token("alice", "write"))
    assert (token.id, token.token, token.scope, token.namespace) == ("tok_1", secret, "write", "alice")
    assert secret not in repr(token), "the secret stays out of logs"
    tokens = api(lambda c: c.list_tokens("alice"))
    assert [(t.id, t.scope, t.namespace, t.token) for t in tokens] == [("tok_1", "write", "alice", None),
                                                                       ("tok_2", "read", "alice", None)]
    assert tokens[0].created_at is not None
    assert api(lambda c: c.revoke_token("alice", "tok_1")) is None
    assert [(r.method, r.path) for r in api.fake.requests] == [
        ("POST", "/namespaces/alice/tokens"), ("GET", "/namespaces/alice/tokens"),
        ("DELETE", "/namespaces/alice/tokens/tok_1")]
    assert api.fake.requests[0].json() == {"scope": "write"}
    with pytest.raises(ValueError):
        api(lambda c: c.create_token("alice", "admin"))
    assert len(api.fake.requests) == 3


def test_create_token_is_not_repeated_after_a_503(api: Api) -> None:
    api.fake.answer((503, {"retry-after": "1"}, problem("not-ready", 503)))
    with pytest.raises(CarmaError):
        api(lambda c: c.create_token("alice", "read"))
    assert len(api.fake.requests) == 1 and api.sleeps == []


# -- error mapping ---------------------------------------------------------------------------------

ERRORS = [
    (404, problem("namespace-not-found", 404), NamespaceNotFound, NotFound),
    (403, problem("quota-exceeded", 403, quota={"fragments": 2, "bytes": None}, usage={"fragments": 2, "bytes": 20}),
     QuotaExceeded, Forbidden),
    (403, problem("forbidden", 403), Forbidden, CarmaError),
    (409, problem("auth-disabled", 409), AuthDisabled, Conflict),
    (413, problem("batch-too-large", 413), BatchTooLarge, PayloadTooLarge),
    (400, problem("duplicate-id", 400), InvalidRequest, CarmaError),
    (400, problem("invalid-namespace", 400), InvalidRequest, CarmaError),
    (403, {}, Forbidden, CarmaError),            # no problem body: the status decides
    (409, problem("import-conflict", 409), Conflict, InvalidRequest),
]


@pytest.mark.parametrize("status,body,cls,family", ERRORS, ids=[f"{e[0]}-{e[1].get('type', 'bare')}" for e in ERRORS])
def test_namespace_problems_map_to_exception_classes(api: Api, status: int, body: Dict[str, Any],
                                                     cls: Type[CarmaError], family: type) -> None:
    api.fake.default = (status, {}, body)
    with pytest.raises(cls) as error:
        api(lambda c: c.namespace("alice").get_fragment("n1"))
    assert type(error.value) is cls, "the most precise class, not only one of its family"
    assert isinstance(error.value, family) and error.value.status == status
    if isinstance(error.value, QuotaExceeded):
        assert error.value.quota == {"fragments": 2, "bytes": None}
        assert error.value.usage == {"fragments": 2, "bytes": 20}


def test_a_head_404_in_a_namespace_is_fragment_not_found(api: Api) -> None:
    api.fake.default = (404, {}, None)
    with pytest.raises(FragmentNotFound):
        api(lambda c: c.namespace("alice").head_fragment("n1"))


# -- batch writes ----------------------------------------------------------------------------------


def batch_answer(request: Recorded) -> Answer:
    """Echoes a batch: server-made ids for items without one, 201 each (400 for 'bad' contents)."""
    results = []
    for position, item in enumerate(request.json()["fragments"]):
        fid = item.get("id") or f"01j{position:023d}"
        if item["content"] == "bad":
            results.append({"id": item.get("id"), "status": 400, "problem": problem("invalid-fragment", 400)})
        else:
            results.append({"id": fid, "status": 201, "version": 1, "fragment_status": "ok"})
    failed = sum(1 for r in results if r["status"] >= 400)
    return (200, {}, {"results": results, "created": len(results) - failed, "updated": 0, "failed": failed})


def test_batch_put_body_and_results(api: Api) -> None:
    api.fake.routes[("POST", "/namespaces/alice/fragments")] = batch_answer
    items: List[Any] = [
        {"id": "a", "content": "first", "tags": ["t"], "links": ["b"], "metadata": {"k": 1}, "ttl": 60},
        BatchItem(content="second, id by the server", embedding=[0.5, 1]),
        {"id": "c", "content": "bad"},
        BatchItem(id="d", content="conditional", if_match=7),
    ]
    result = api(lambda c: c.namespace("alice").put_fragments(items))
    sent = api.fake.requests[0]
    assert (sent.method, sent.path, sent.headers["content-type"]) == ("POST", "/namespaces/alice/fragments", "application/json")
    assert sent.json() == {"fragments": [
        {"id": "a", "content": "first", "links": ["b"], "tags": ["t"], "metadata": {"k": 1}, "ttl": 60},
        {"content": "second, id by the server", "embedding": [0.5, 1.0]},
        {"id": "c", "content": "bad"},
        {"id": "d", "content": "conditional", "if_match": 7},
    ]}
    assert isinstance(result, BatchResult)
    assert result.ids == ["a", "01j" + "1".zfill(23), "c", "d"]
    assert [r.status for r in result.results] == [201, 201, 400, 201]
    assert (result.created, result.updated, result.failed, result.ok) == (3, 0, 1, False)
    [failure] = result.failures
    error = failure.error()
    assert isinstance(error, InvalidRequest) and error.slug == "invalid-fragment"
    assert result.results[0].error() is None and result.results[0].created and result.results[0].version == 1


def test_batch_put_on_the_root_client_uses_post_fragments(api: Api) -> None:
    api.fake.routes[("POST", "/fragments")] = batch_answer
    result = api(lambda c: c.put_fragments([{"content": "no id"}]))
    assert result.created == 1 and result.results[0].id
    assert api.fake.requests[0].path == "/fragments"


def test_more_than_1000_items_are_split_into_several_requests(api: Api) -> None:
    api.fake.routes[("POST", "/namespaces/alice/fragments")] = batch_answer
    items = [{"id": f"f{i:04d}", "content": f"fact {i}"} for i in range(2 * MAX_BATCH_ITEMS + 500)]
    result = api(lambda c: c.namespace("alice").put_fragments(items))
    sizes = [len(r.json()["fragments"]) for r in api.fake.requests]
    assert sizes == [1000, 1000, 500]
    assert result.ids == [item["id"] for item in items], "results in the order of the items"
    assert (result.created, result.failed) == (2500, 0)
    sent = [item["id"] for r in api.fake.requests for item in r.json()["fragments"]]
    assert sent == [item["id"] for item in items]


def test_chunk_size_and_an_empty_batch(api: Api) -> None:
    api.fake.routes[("POST", "/fragments")] = batch_answer
    result = api(lambda c: c.put_fragments([{"content": f"x{i}"} for i in range(5)], chunk_size=2))
    assert [len(r.json()["fragments"]) for r in api.fake.requests] == [2, 2, 1] and len(result.results) == 5
    empty = api(lambda c: c.put_fragments([]))
    assert (empty.results, empty.created) == ([], 0) and len(api.fake.requests) == 3, "nothing sent for no items"
    for bad in (0, 1001, 2.5):
        with pytest.raises(ValueError):
            api(lambda c: c.put_fragments([{"content": "x"}], chunk_size=bad))


@pytest.mark.parametrize("bad,error", [
    ({"id": "x", "content": ""}, ValueError),
    ({"id": "x", "content": "y", "tags": "pref"}, TypeError),
    ({"id": "x", "contents": "typo"}, TypeError),
    ({"id": "x"}, TypeError),
    ({"id": 7, "content": "y"}, TypeError),
    ({"id": "x", "content": "y", "if_match": "7"}, TypeError),
    ({"id": "x", "content": "y", "ttl": 5, "expires_at": NOW}, ValueError),
    ("just a string", TypeError),
])
def test_a_bad_item_anywhere_raises_before_the_first_request(api: Api, bad: Any, error: type) -> None:
    items: List[Any] = [{"content": f"ok {i}"} for i in range(1500)] + [bad]
    with pytest.raises(error):
        api(lambda c: c.put_fragments(items))
    assert api.fake.requests == []
    with pytest.raises(TypeError):
        api(lambda c: c.put_fragments("not a list"))


def test_a_failed_request_keeps_the_earlier_requests_results(api: Api) -> None:
    answers: Iterator[Optional[Answer]] = iter([None, (401, {}, problem("unauthorized", 401))])

    def second_fails(request: Recorded) -> Answer:
        answer = next(answers)
        return answer if answer is not None else batch_answer(request)

    api.fake.routes[("POST", "/fragments")] = second_fails
    with pytest.raises(Unauthorized) as error:
        api(lambda c: c.put_fragments([{"id": f"i{i}", "content": "x"} for i in range(1500)]))
    partial = error.value.partial_batch
    assert partial is not None and len(partial.results) == 1000 and partial.created == 1000
    assert len(api.fake.requests) == 2


def test_batch_with_every_id_is_retried_after_503(api: Api) -> None:
    api.fake.routes[("POST", "/fragments")] = lambda r: (
        (503, {"retry-after": "2"}, problem("not-ready", 503)) if len(api.fake.requests) == 1 else batch_answer(r))
    result = api(lambda c: c.put_fragments([{"id": "a", "content": "x"}, {"id": "b", "content": "y"}]))
    assert result.created == 2 and len(api.fake.requests) == 2 and api.sleeps == [2.0]


@pytest.mark.parametrize("items", [
    [{"id": "a", "content": "x"}, {"content": "server names me"}],
    [{"id": "a", "content": "x"}, {"id": "b", "content": "conditional", "if_match": 3}],
], ids=["missing-id", "if_match"])
def test_batch_with_a_missing_id_or_a_condition_is_not_retried_after_503(api: Api, items: List[Dict[str, Any]]) -> None:
    api.fake.answer((503, {"retry-after": "2"}, problem("not-ready", 503)))
    with pytest.raises(CarmaError) as error:
        api(lambda c: c.put_fragments(items))
    assert error.value.status == 503 and len(api.fake.requests) == 1 and api.sleeps == []


def test_async_batch_is_retried_after_a_lost_connection_only_with_every_id() -> None:
    pytest.importorskip("httpx")
    api = Api("async", Fake())
    api.fake.routes[("POST", "/fragments")] = lambda r: batch_answer(r) if len(api.fake.requests) > 1 else ConnectionResetError("dropped")
    result = api(lambda c: c.put_fragments([{"id": "a", "content": "x"}]))
    assert result.created == 1 and len(api.fake.requests) == 2

    api = Api("async", Fake())
    api.fake.routes[("POST", "/fragments")] = lambda r: batch_answer(r) if len(api.fake.requests) > 1 else ConnectionResetError("dropped")
    with pytest.raises(TransportError):
        api(lambda c: c.put_fragments([{"id": "a", "content": "x"}, {"content": "no id"}]))
    assert len(api.fake.requests) == 1, "a batch with server-made ids is never sent twice"


def test_async_timeouts_are_transport_errors() -> None:
    httpx = pytest.importorskip("httpx")
    from carma_client import AsyncCarmaClient

    def handler(request: Any) -> Any:
        raise httpx.ReadTimeout("slow", request=request)

    async def go() -> None:
        async with AsyncCarmaClient("http://carma.test", timeout=0.5, transport=httpx.MockTransport(handler)) as c:
            with pytest.raises(TransportError, match="timed out"):
                await c.healthz()

    asyncio.run(go())


def test_async_client_retries_reads_after_503_and_waits_without_blocking(api: Api) -> None:
    api.fake.answer((503, {"retry-after": "1"}, problem("not-ready", 503)),
                    (200, {}, {"status": "ready", "fragments": 0, "pending_writes": 0}))
    assert api(lambda c: c.readyz()).status == "ready"
    assert api.sleeps == [1.0] and len(api.fake.requests) == 2


def test_async_client_base_url_validation_and_close() -> None:
    httpx = pytest.importorskip("httpx")
    from carma_client import AsyncCarmaClient

    with pytest.raises(ValueError):
        AsyncCarmaClient("127.0.0.1:8080")

    async def go() -> bool:
        client = AsyncCarmaClient("http://carma.test/", transport=httpx.MockTransport(lambda r: httpx.Response(200)))
        await client.aclose()
        return bool(client._http._client.is_closed)

    assert asyncio.run(go())


# -- the blocking client's lost connection, over a real socket --------------------------------------


class DroppingServer:
    """HTTP/1.1 keep-alive server that closes the connection without answering the requests whose
    number (from 1) is in ``drop``; the others get an echoing batch answer or 200 ``{}``."""

    def __init__(self, drop: List[int]) -> None:
        self.seen: List[Tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.seen.append((self.command, self.path))
                if len(server.seen) in drop:
                    self.close_connection = True
                    return
                if self.command == "POST":
                    _, _, payload = batch_answer(Recorded("POST", self.path, {}, body))  # type: ignore[misc]
                else:
                    payload = {"status": "ok"}
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dropping() -> Iterator[Callable[[List[int]], DroppingServer]]:
    servers: List[DroppingServer] = []

    def start(drop: List[int]) -> DroppingServer:
        servers.append(DroppingServer(drop))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_sync_batch_with_every_id_is_resent_on_a_fresh_connection(dropping: Callable[[List[int]], DroppingServer]) -> None:
    server = dropping([2])
    with CarmaClient(server.url, retry=RetryPolicy(max_retries=0)) as client:
        assert client.healthz().status == "ok"  # opens the kept-alive connection
        result = client.put_fragments([{"id": "a", "content": "x"}, {"id": "b", "content": "y"}])
    assert result.created == 2
    assert server.seen == [("GET", "/healthz"), ("POST", "/fragments"), ("POST", "/fragments")]


def test_sync_batch_with_a_server_made_id_is_never_resent(dropping: Callable[[List[int]], DroppingServer]) -> None:
    server = dropping([2])
    with CarmaClient(server.url) as client:
        assert client.healthz().status == "ok"
        with pytest.raises(TransportError):
            client.namespace("alice").put_fragments([{"id": "a", "content": "x"}, {"content": "no id"}])
    assert server.seen == [("GET", "/healthz"), ("POST", "/namespaces/alice/fragments")]


def test_async_batch_over_a_real_socket_is_resent_only_with_every_id(dropping: Callable[[List[int]], DroppingServer]) -> None:
    pytest.importorskip("httpx")
    from carma_client import AsyncCarmaClient

    async def go(url: str, items: List[Dict[str, str]]) -> BatchResult:
        async with AsyncCarmaClient(url) as client:
            assert (await client.healthz()).status == "ok"
            return await client.put_fragments(items)

    resent = dropping([2])
    assert asyncio.run(go(resent.url, [{"id": "a", "content": "x"}])).created == 1
    assert resent.seen == [("GET", "/healthz"), ("POST", "/fragments"), ("POST", "/fragments")]

    once = dropping([2])
    with pytest.raises(TransportError):
        asyncio.run(go(once.url, [{"content": "no id"}]))
    assert once.seen == [("GET", "/healthz"), ("POST", "/fragments")]
