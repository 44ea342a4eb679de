"""Namespaces, tokens, quotas, batch writes and the asyncio client against a real carmad.

Every test here but the first is marked ``namespaces``: it needs a carmad with the namespace API
(``/namespaces/...``, ``POST /fragments``); against an older one they fail with 404.
``pytest -m namespaces`` runs them alone; ``-m "not namespaces"`` leaves them out.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Callable, List

import pytest

from carma_client import (
    AuthDisabled,
    BatchItem,
    CarmaClient,
    Forbidden,
    Fragment,
    FragmentNotFound,
    InvalidRequest,
    NamespaceNotFound,
    QuotaExceeded,
    Unauthorized,
)

from conftest import Carmad

ADMIN_TOKEN = "py-client-admin-token-0123456789"
SERVER_ID = re.compile(r"[0-9a-z]{26}")

namespaces = pytest.mark.namespaces


@pytest.fixture
def ns(uid: Callable[[str], str]) -> Callable[[str], str]:
    """Unique namespace names (the shared server outlives a test)."""
    return lambda name: uid("ns-" + name)


@pytest.fixture
def admin_server(start_carmad: Callable[..., Carmad], tmp_path: Path) -> Carmad:
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN_TOKEN + "\n", encoding="utf-8")
    return start_carmad("--auth-token-file", str(token_file))


def test_async_client_round_trip_in_the_default_namespace(carmad: Carmad, uid: Callable[[str], str]) -> None:
    """The httpx transport against the real server: no namespace API needed."""
    pytest.importorskip("httpx")
    from carma_client import AsyncCarmaClient

    async def go() -> None:
        async with AsyncCarmaClient(carmad.url, timeout=10) as carma:
            assert (await carma.healthz()).status == "ok"
            fid = uid("async")
            put = await carma.put_fragment(fid, "The async client wrote this.", tags=["async"])
            assert put.created and put.fragment.namespace == "default"
            got = await carma.get_fragment(fid)
            assert isinstance(got, Fragment) and got.content == "The async client wrote this."
            assert await carma.get_content(fid) == "The async client wrote this."
            assert (await carma.head_fragment(fid)).version == put.version
            listed = [s.id async for s in carma.iter_fragments(tag="async", page_size=1)]
            assert fid in listed
            await carma.wait_until_indexed(timeout=30)
            hits = await carma.query("async client wrote", mode="text", k=50)
            assert fid in [h.id for h in hits.results]
            many = await asyncio.gather(*(carma.get_fragment(fid) for _ in range(8)))
            assert all(isinstance(m, Fragment) and m.version == put.version for m in many)
            cycle = await carma.start_dream()  # POST without a body (Content-Length: 0)
            assert (await carma.wait_for_cycle(cycle.id, timeout=60)).state in ("finished", "interrupted")
            await carma.delete_fragment(fid)
            with pytest.raises(FragmentNotFound):
                await carma.get_fragment(fid)

    asyncio.run(go())


@namespaces
def test_the_same_id_in_two_namespaces_holds_two_fragments(client: CarmaClient, ns: Callable[[str], str]) -> None:
    alice, bob = client.namespace(ns("alice")), client.namespace(ns("bob"))
    marker_a, marker_b = "zorblax", "quimbletop"
    put_a = alice.put_fragment("shared-id", f"Alice keeps the {marker_a} in the red box.", tags=["box"])
    put_b = bob.put_fragment("shared-id", f"Bob keeps the {marker_b} in the blue box.", tags=["box"])
    assert put_a.created and put_b.created
    assert put_a.fragment.namespace == alice.name and put_b.fragment.namespace == bob.name
    got_a, got_b = alice.get_fragment("shared-id"), bob.get_fragment("shared-id")
    assert isinstance(got_a, Fragment) and marker_a in got_a.content and got_a.namespace == alice.name
    assert isinstance(got_b, Fragment) and marker_b in got_b.content
    with pytest.raises(FragmentNotFound):
        client.get_fragment("shared-id")  # default has none

    client.wait_until_indexed(timeout=30)
    for who, own, other in ((alice, marker_a, marker_b), (bob, marker_b, marker_a)):
        for text in (own, other, "box", f"{own} {other}"):
            hits = who.query(text, mode="text", k=100).results
            assert all(own in h.text for h in hits), (who.name, text, [h.text for h in hits])
        assert [h.text for h in who.query(other, mode="text").results] == []
    assert [s.id for s in alice.iter_fragments()] == ["shared-id"]
    assert [n.id for n in alice.topology().nodes] == ["shared-id"]

    # Deleting in one namespace leaves the other's.
    alice.delete_fragment("shared-id")
    with pytest.raises(FragmentNotFound):
        alice.get_fragment("shared-id")
    assert isinstance(bob.get_fragment("shared-id"), Fragment)


@namespaces
def test_export_from_one_namespace_imports_into_another(client: CarmaClient, ns: Callable[[str], str]) -> None:
    source, target = client.namespace(ns("src")), client.namespace(ns("dst"))
    source.put_fragment("a", "first fact")
    source.put_fragment("b", "second fact", links=["a"])
    lines = source.export_fragments()
    assert [line.get("namespace") for line in lines if "content" in line] == [source.name] * 2
    counts = target.import_fragments(lines)
    assert counts["imported"] == 2
    copied = target.get_fragment("b")
    assert isinstance(copied, Fragment) and copied.namespace == target.name and copied.links == ["a"]


@namespaces
def test_unknown_namespace_reads_are_namespace_not_found(client: CarmaClient, ns: Callable[[str], str]) -> None:
    never = client.namespace(ns("never-created"))
    for call in (lambda: never.get_fragment("x"), never.list_fragments, lambda: client.get_namespace(never.name)):
        with pytest.raises(NamespaceNotFound) as error:
            call()
        assert error.value.status == 404 and error.value.slug == "namespace-not-found"


@namespaces
def test_batch_put_with_and_without_ids(client: CarmaClient, ns: Callable[[str], str]) -> None:
    space = client.namespace(ns("batch"))
    first = space.put_fragments([
        {"id": "b-1", "content": "one", "tags": ["batch"]},
        BatchItem(id="b-2", content="two", links=["b-1"]),
        {"content": "three, named by the server"},
        {"id": "b-1", "content": "duplicate within the batch"},
        {"id": "b-5", "content": "five", "if_match": 99},
    ])
    statuses = [r.status for r in first.results]
    assert statuses[:3] == [201, 201, 201]
    assert statuses[3] == 400 and first.results[3].problem and first.results[3].error().slug == "duplicate-id"  # type: ignore[union-attr]
    assert statuses[4] in (404, 412), "if_match on a missing fragment is refused"
    assert (first.created, first.updated, first.failed) == (3, 0, 2)
    made = first.results[2].id
    assert made is not None and SERVER_ID.fullmatch(made), made
    got = space.get_fragment(made)
    assert isinstance(got, Fragment) and got.content == "three, named by the server"

    # The same ids and contents again: unchanged, versions as they were (what makes retries safe).
    again = space.put_fragments([{"id": "b-1", "content": "one", "tags": ["batch"]}, BatchItem(id="b-2", content="two", links=["b-1"])])
    assert [r.status for r in again.results] == [200, 200]
    assert [r.version for r in again.results] == [r.version for r in first.results[:2]]
    # A conditional item, and several requests for one call.
    v1 = first.results[0].version
    assert v1 is not None
    updated = space.put_fragments([{"id": "b-1", "content": "one, edited", "if_match": v1}])
    assert updated.results[0].status == 200 and (updated.results[0].version or 0) > v1
    split = space.put_fragments([{"id": f"s-{i}", "content": f"split {i}"} for i in range(5)], chunk_size=2)
    assert split.created == 5 and split.ids == [f"s-{i}" for i in range(5)]
    assert client.get_namespace(space.name).fragments == 3 + 5
    with pytest.raises(FragmentNotFound):
        client.get_fragment("b-1")


@namespaces
def test_batch_put_in_the_default_namespace(client: CarmaClient, uid: Callable[[str], str]) -> None:
    result = client.put_fragments([{"id": uid("d1"), "content": "default batch"}, {"content": "default, no id"}])
    assert result.ok and result.created == 2
    got = client.get_fragment(result.ids[1] or "")
    assert isinstance(got, Fragment) and got.namespace == "default"


@namespaces
def test_more_than_1000_items_in_one_call(client: CarmaClient, ns: Callable[[str], str]) -> None:
    space = client.namespace(ns("big"))
    result = space.put_fragments([{"id": f"big-{i:04d}", "content": f"fact number {i}"} for i in range(1001)])
    assert result.created == 1001 and result.ids[-1] == "big-1000"
    assert client.get_namespace(space.name).fragments == 1001


@namespaces
def test_namespace_administration(client: CarmaClient, ns: Callable[[str], str]) -> None:
    name = ns("admin")
    created = client.create_namespace(name)
    assert created.created is True and created.name == name and created.fragments == 0
    assert created.quota is not None and created.created_at is not None
    again = client.create_namespace(name, quota_fragments=50)
    assert again.created is False and again.quota is not None and again.quota.fragments == 50
    listed = {n.name for n in client.iter_namespaces(page_size=2)}
    assert {"default", name} <= listed
    client.namespace(name).put_fragment("x", "to be tombstoned")
    assert client.get_namespace(name).fragments == 1
    gone = client.delete_namespace(name)
    assert (gone.name, gone.deleted) == (name, 1)
    with pytest.raises(NamespaceNotFound):
        client.get_namespace(name)
    with pytest.raises(InvalidRequest) as refused:
        client.delete_namespace("default")
    assert refused.value.slug == "invalid-namespace"


@namespaces
def test_token_routes_without_auth_are_auth_disabled(client: CarmaClient, ns: Callable[[str], str]) -> None:
    name = ns("open")
    client.create_namespace(name)
    with pytest.raises(AuthDisabled) as error:
        client.create_token(name, "write")
    assert error.value.status == 409


@namespaces
def test_tokens_create_use_and_revoke(admin_server: Carmad, uid: Callable[[str], str]) -> None:
    with CarmaClient(admin_server.url, token=ADMIN_TOKEN) as admin:
        alice, bob = uid("alice"), uid("bob")
        admin.create_namespace(alice)
        admin.create_namespace(bob)
        writer = admin.create_token(alice, "write")
        reader = admin.create_token(alice, "read")
        # The formats (the note's examples are `tok_...` and `carma_ns_...`) are the server's business.
        assert writer.token and writer.id and writer.token != writer.id and reader.token != writer.token
        assert (writer.scope, writer.namespace, reader.scope) == ("write", alice, "read")
        assert {t.id for t in admin.list_tokens(alice)} == {writer.id, reader.id}
        assert all(t.token is None for t in admin.list_tokens(alice))

        with CarmaClient(admin_server.url, token=writer.token) as as_alice:
            mine = as_alice.namespace(alice)
            assert mine.put_fragment("t-1", "written with alice's token").created
            assert mine.info().fragments == 1
            with pytest.raises(NamespaceNotFound):
                as_alice.namespace(bob).get_fragment("t-1")  # another namespace looks like none
            with pytest.raises(NamespaceNotFound):
                as_alice.namespace(uid("nobody")).list_fragments()
            with pytest.raises(Forbidden) as global_route:
                as_alice.list_namespaces()
            assert global_route.value.slug == "forbidden"
            with pytest.raises(Forbidden):
                as_alice.create_namespace(uid("new"))
        # A namespace token on one namespace client, the admin's on the rest.
        read_only = admin.namespace(alice, token=reader.token)
        assert read_only.get_content("t-1") == "written with alice's token"
        with pytest.raises(Forbidden):
            read_only.put_fragment("t-2", "a read token cannot write")

        admin.revoke_token(alice, writer.id)
        with pytest.raises(Unauthorized) as revoked:
            admin.namespace(alice, token=writer.token).put_fragment("t-3", "revoked")
        assert revoked.value.status == 401
        assert {t.id for t in admin.list_tokens(alice)} == {reader.id}
        with pytest.raises(Unauthorized):
            CarmaClient(admin_server.url).namespace(alice).put_fragment("t-4", "no token")


@namespaces
def test_quotas(client: CarmaClient, ns: Callable[[str], str]) -> None:
    name = ns("quota")
    client.create_namespace(name, quota_fragments=2)
    space = client.namespace(name)
    space.put_fragment("q-1", "one")
    space.put_fragment("q-2", "two")
    with pytest.raises(QuotaExceeded) as over:
        space.put_fragment("q-3", "three")
    assert over.value.status == 403 and isinstance(over.value, Forbidden)
    # `usage` may be the count now (2) or the count the write would reach (3): the note leaves it open.
    assert over.value.quota.get("fragments") == 2 and over.value.usage.get("fragments") in (2, 3)
    with pytest.raises(FragmentNotFound):
        space.get_fragment("q-3")  # nothing written
    space.put_fragment("q-1", "one, replaced")  # a replacement adds no fragment

    batch = space.put_fragments([{"id": "q-4", "content": "four"}])
    assert batch.results[0].status == 403 and isinstance(batch.results[0].error(), QuotaExceeded)

    by_bytes = ns("bytes")
    client.create_namespace(by_bytes, quota_bytes=10)
    small = client.namespace(by_bytes)
    small.put_fragment("b-1", "12345")
    with pytest.raises(QuotaExceeded) as too_big:
        small.put_fragment("b-2", "more than five bytes")
    assert too_big.value.quota.get("bytes") == 10


@namespaces
def test_async_client_round_trip_in_a_namespace(admin_server: Carmad, uid: Callable[[str], str]) -> None:
    pytest.importorskip("httpx")
    from carma_client import AsyncCarmaClient

    async def go() -> None:
        async with AsyncCarmaClient(admin_server.url, token=ADMIN_TOKEN, timeout=10) as admin:
            name = uid("async-ns")
            assert (await admin.create_namespace(name, quota_fragments=100)).created
            token = await admin.create_token(name, "write")
            space = admin.namespace(name, token=token.token)
            put = await space.put_fragment("a-1", "asynchronous namespace fact")
            assert put.fragment.namespace == name
            batch = await space.put_fragments([{"content": f"async batch {i}"} for i in range(3)])
            assert batch.created == 3 and all(SERVER_ID.fullmatch(i or "") for i in batch.ids)
            ids: List[str] = [s.id async for s in space.iter_fragments(page_size=2)]
            assert sorted(ids) == sorted(["a-1", *[i for i in batch.ids if i]])
            await admin.wait_until_indexed(timeout=30)
            hits = await space.query("asynchronous namespace", mode="text")
            assert [h.id for h in hits.results][:1] == ["a-1"]
            assert (await space.info()).fragments == 4
            with pytest.raises(NamespaceNotFound):
                await admin.namespace(uid("other"), token=token.token).get_fragment("a-1")
            await admin.revoke_token(name, token.id)
            with pytest.raises(Unauthorized):
                await space.put_fragment("a-2", "after revocation")
            assert (await admin.delete_namespace(name)).deleted == 4

    asyncio.run(go())
