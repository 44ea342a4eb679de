"""Every client call against a real carmad (no disk damage needed here)."""

from __future__ import annotations

import threading
from typing import Callable, List

import pytest

from carma_client import (
    BlankStub,
    CarmaClient,
    CycleNotFound,
    CycleReport,
    DreamBudget,
    Fragment,
    FragmentNotFound,
    InvalidRequest,
    NotModified,
    PayloadTooLarge,
    PreconditionFailed,
)

from conftest import MANUAL_DREAM_ONLY, Carmad


def test_health_and_readiness(client: CarmaClient) -> None:
    assert client.healthz().status == "ok"
    ready = client.readyz()
    assert ready.status == "ready"
    assert ready.fragments >= 0 and ready.pending_writes >= 0


def test_round_trip_every_field(client: CarmaClient, uid: Callable[[str], str]) -> None:
    fid = uid("round")
    content = "Zürich, 東京 and a tab\there: the build server moved to rack 4."
    put = client.put_fragment(fid, content, links=[uid("other")], tags=["infra", "moved"],
                              metadata={"source": "chat", "n": 3, "nested": {"ok": True}}, embedding=[0.25, -0.5, 1.0])
    assert put.created is True
    assert put.location == f"/fragments/{fid}"
    assert put.etag == f'"{put.version}"'

    got = client.get_fragment(fid)
    assert isinstance(got, Fragment)
    assert got.is_exact and not got.is_reconstructed and got.reconstruction is None
    assert got.content == content
    assert got.links == [uid("other")]
    assert got.tags == ["infra", "moved"]
    assert got.metadata == {"source": "chat", "n": 3, "nested": {"ok": True}}
    assert got.embedding == [0.25, -0.5, 1.0]
    assert got.size == len(content.encode("utf-8"))
    assert got.checksum.startswith("crc32c:")
    assert got.version == put.version and got.etag == put.etag
    assert got == put.fragment


def test_versions_etags_and_conditional_requests(client: CarmaClient, uid: Callable[[str], str]) -> None:
    fid = uid("versions")
    first = client.put_fragment(fid, "one", if_none_match="*")
    with pytest.raises(PreconditionFailed) as exists:
        client.put_fragment(fid, "again", if_none_match="*")
    assert exists.value.status == 412
    assert exists.value.type == "urn:carma:problem:precondition-failed"
    assert exists.value.current_version == first.version

    second = client.put_fragment(fid, "two", if_match=first.version)
    assert second.created is False and second.version > first.version

    with pytest.raises(PreconditionFailed) as stale:
        client.put_fragment(fid, "lost update", if_match=first.etag)
    assert stale.value.current_version == second.version
    assert stale.value.etag == second.etag
    assert client.get_fragment(fid).content == "two"  # type: ignore[union-attr]

    # A list of tags, and the wildcard.
    third = client.put_fragment(fid, "three", if_match=[first.version, second.version])
    fourth = client.put_fragment(fid, "four", if_match="*")
    assert first.version < second.version < third.version < fourth.version

    # Conditional reads: 304 while the cached version is current.
    assert client.get_fragment(fid, if_none_match=fourth.etag) == NotModified(etag=fourth.etag)
    assert client.get_fragment(fid, if_none_match=fourth.version).version == fourth.version  # type: ignore[union-attr]
    assert isinstance(client.get_fragment(fid, if_none_match=third.version), Fragment)
    assert client.head_fragment(fid, if_none_match=fourth.version).not_modified

    with pytest.raises(PreconditionFailed):
        client.delete_fragment(fid, if_match=third.version)
    client.delete_fragment(fid, if_match=fourth.version)
    with pytest.raises(FragmentNotFound):
        client.get_fragment(fid)


def test_head(client: CarmaClient, uid: Callable[[str], str]) -> None:
    fid = uid("head")
    put = client.put_fragment(fid, "headers only")
    head = client.head_fragment(fid)
    assert head.http_status == 200 and head.status == "ok" and not head.is_blank
    assert head.etag == put.etag and head.version == put.version
    assert head.content_length and head.content_length > len("headers only")
    with pytest.raises(FragmentNotFound) as missing:
        client.head_fragment(uid("never"))
    assert missing.value.status == 404


def test_not_found_and_delete(client: CarmaClient, uid: Callable[[str], str]) -> None:
    with pytest.raises(FragmentNotFound) as missing:
        client.get_fragment(uid("typo"))
    assert missing.value.type == "urn:carma:problem:fragment-not-found"
    assert missing.value.slug == "fragment-not-found"
    assert missing.value.title and missing.value.detail
    fid = uid("gone")
    client.put_fragment(fid, "short-lived")
    client.delete_fragment(fid)
    for call in (client.get_fragment, client.delete_fragment, client.get_history, client.get_context):
        with pytest.raises(FragmentNotFound):
            call(fid)
    # A deleted id comes back as a new fragment, with a newer version.
    assert client.put_fragment(fid, "back").created


def test_invalid_requests_are_typed(client: CarmaClient, uid: Callable[[str], str]) -> None:
    with pytest.raises(InvalidRequest) as bad_id:
        client.get_fragment(".hidden")
    assert bad_id.value.type == "urn:carma:problem:invalid-id"
    with pytest.raises(InvalidRequest) as slash:
        client.put_fragment("a/b", "x")  # quoted, so it cannot reach another route
    assert slash.value.slug == "invalid-id"
    with pytest.raises(InvalidRequest) as bad_limit:
        client.list_fragments(limit=0)
    assert bad_limit.value.slug == "invalid-query" and bad_limit.value.field == "limit"
    with pytest.raises(InvalidRequest) as bad_tag:
        client.put_fragment(uid("tag"), "x", tags=[""])
    assert bad_tag.value.slug == "invalid-fragment" and bad_tag.value.field
    with pytest.raises(InvalidRequest) as bad_budget:
        client.start_dream(DreamBudget(max_repairs=0))
    assert bad_budget.value.slug == "invalid-budget"
    with pytest.raises(CycleNotFound) as cycle:
        client.get_cycle(999_999)
    assert cycle.value.status == 404


def test_payload_too_large(start_carmad: Callable[..., Carmad]) -> None:
    server = start_carmad("--max-body-bytes", "2048")
    with server.client() as c:
        with pytest.raises(PayloadTooLarge) as too_large:
            c.put_fragment("big", "x" * 5000)
        assert too_large.value.status == 413
        assert too_large.value.max_body_bytes == 2048
        assert c.healthz().status == "ok"  # the client reconnects after the server closed


def test_list_pages_and_iterator(client: CarmaClient, uid: Callable[[str], str]) -> None:
    tag = uid("list")
    ids = sorted(uid(f"list-{n:02d}") for n in range(7))
    for fid in ids:
        client.put_fragment(fid, f"listed {fid}", tags=[tag])
    first = client.list_fragments(tag=tag, limit=3)
    assert [s.id for s in first.items] == ids[:3]
    assert first.next_cursor == ids[2]
    second = client.list_fragments(tag=tag, limit=3, cursor=first.next_cursor)
    assert [s.id for s in second.items] == ids[3:6]
    last = client.list_fragments(tag=tag, limit=3, cursor=second.next_cursor)
    assert [s.id for s in last.items] == ids[6:] and last.next_cursor is None
    summaries = list(client.iter_fragments(tag=tag, page_size=2))
    assert [s.id for s in summaries] == ids
    assert all(s.status == "ok" and not s.is_blank and s.tags == [tag] for s in summaries)
    assert {s.id for s in client.iter_fragments(status="ok", tag=tag)} == set(ids)
    assert list(client.iter_fragments(status="blank", tag=tag)) == []


def test_history_and_context(client: CarmaClient, uid: Callable[[str], str]) -> None:
    a, b, c = uid("ctx-a"), uid("ctx-b"), uid("ctx-nowhere")
    client.put_fragment(a, "apples and pears grow in the orchard", links=[b, c])
    client.put_fragment(b, "pears and apples from the orchard are sold at the market", links=[a])
    client.put_fragment(a, "apples and pears grow in the old orchard", links=[b, c])
    history = client.get_history(a)
    assert history.id == a and history.status == "ok"
    assert history.kinds == ["created", "updated"]
    assert history.events[0].version is not None and history.events[0].size is not None
    assert history.events[0].at <= history.events[1].at

    context = client.get_context(a, k=5)
    assert context.id == a and context.status == "ok"
    assert [(n.id, n.status) for n in context.links] == [(b, "ok"), (c, "unknown")]
    assert [n.id for n in context.backlinks] == [b]
    assert b in [s.id for s in context.similar]
    assert all(-1.0 <= s.score <= 1.0 for s in context.similar)
    assert client.get_context(a, k=0).similar == []


def test_query(client: CarmaClient, uid: Callable[[str], str]) -> None:
    tag = uid("q")
    client.put_fragment(uid("q1"), "the lighthouse keeper logs every passing ship", tags=[tag])
    client.put_fragment(uid("q2"), "ships pass the lighthouse at night", tags=[tag])
    client.put_fragment(uid("q3"), "a recipe for lentil soup", tags=[tag])
    answer = client.query("lighthouse keeper", k=5, tags=[tag])
    assert answer.index.ready and answer.took_ms >= 0
    # Scores are absolute (comparable across queries), not scaled to 1 for the best hit.
    assert answer.results[0].id == uid("q1") and answer.results[0].score > answer.results[1].score
    best = answer.results[0].score
    assert [hit.id for hit in client.query("lighthouse keeper", k=5, tags=[tag], min_score=best).results] == [uid("q1")]
    assert all(0.0 <= hit.score <= 1.0 and hit.status == "ok" and hit.content for hit in answer.results)
    assert uid("q3") not in [hit.id for hit in answer.results]
    assert answer.blanks == []
    assert answer.signals == ["text"] and answer.index.model is None and answer.notes
    # Filters and modes reach the server; a bad mode is a typed 400.
    client.put_fragment(uid("q4"), "lighthouse maintenance schedule", tags=[tag], metadata={"site": "north"})
    only = client.query("lighthouse", k=5, tags=[tag], mode="text", status=["ok"], metadata={"site": "north"})
    assert [hit.id for hit in only.results] == [uid("q4")] and only.signals == ["text"]
    with pytest.raises(ValueError):
        client.query()
    with pytest.raises(InvalidRequest) as raised:
        client.query("lighthouse", mode="sideways")
    assert raised.value.status == 400 and raised.value.problem.get("field") == "mode"


def test_query_by_embedding(start_carmad: Callable[..., Carmad]) -> None:
    # Its own server: the first embedding fixes the store's dimension for good.
    server = start_carmad()
    with server.client() as c:
        c.put_fragment("east", "points east", embedding=[1.0, 0.0])
        c.put_fragment("north", "points north", embedding=[0.0, 1.0])
        answer = c.query(embedding=[0.9, 0.1], k=2)
        assert [hit.id for hit in answer.results] == ["east", "north"]
        with pytest.raises(InvalidRequest) as wrong_dimension:
            c.query(embedding=[1.0, 0.0, 0.0])
        assert wrong_dimension.value.field == "embedding"


def test_dream_start_status_and_report(client: CarmaClient, uid: Callable[[str], str]) -> None:
    client.put_fragment(uid("dream"), "something to scrub")
    summary = client.start_dream(DreamBudget(max_repairs=10, max_seconds=30, scrub_fragments=100))
    assert summary.id >= 1 and summary.location == f"/dream/{summary.id}"
    assert summary.trigger in ("manual", "scheduled", "idle")
    report = client.wait_for_cycle(summary.id, timeout=60)
    assert isinstance(report, CycleReport)
    assert report.state == "finished" and report.finished_at is not None
    assert [phase.name for phase in report.phases][:2] == ["repair", "scrub"]
    assert report.phases[0].counts["repaired"] == 0
    assert report.events_truncated is False
    status = client.dream_status()
    assert status.state in ("idle", "running")
    assert status.queue.depth == 0
    assert report.id in [cycle.id for cycle in status.recent_cycles]
    assert 0.0 <= status.scrub.progress <= 1.0
    again = client.dream(timeout=60)
    assert again.id > report.id and again.state == "finished"


def test_topology_json_and_dot(client: CarmaClient, uid: Callable[[str], str]) -> None:
    a, b, ghost = uid("topo-a"), uid("topo-b"), uid("topo-ghost")
    client.put_fragment(a, "alpha", links=[b])
    client.put_fragment(b, "beta", links=[a, ghost])
    graph = client.topology(around=a, depth=2, limit=10)
    statuses = {node.id: node.status for node in graph.nodes}
    assert statuses == {a: "ok", b: "ok", ghost: "unknown"}
    assert {(e.source, e.target) for e in graph.edges} >= {(a, b), (b, a), (b, ghost)}
    assert graph.counts.get("ok") == 2 and graph.truncated is False
    page = client.topology(limit=1)
    assert len(page.nodes) == 1
    dot = client.topology_dot(around=a, depth=1)
    assert dot.startswith("digraph carma {") and f'"{a}"' in dot


def test_metrics_text(client: CarmaClient) -> None:
    text = client.metrics()
    assert "# TYPE carma_fragments gauge" in text or "carma_fragments{" in text
    assert "carma_http_requests_total" in text


def test_one_client_shared_by_threads(carmad: Carmad, uid: Callable[[str], str]) -> None:
    tag = uid("threads")
    errors: List[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for n in range(25):
                fid = uid(f"w{worker}-{n}")
                shared.put_fragment(fid, f"written by {worker}", tags=[tag])
                assert shared.get_fragment(fid).content == f"written by {worker}"  # type: ignore[union-attr]
        except BaseException as error:  # noqa: B902 - reported by the main thread
            errors.append(error)

    with CarmaClient(carmad.url, timeout=10) as shared:
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(list(shared.iter_fragments(tag=tag, page_size=30))) == 100


def test_blank_stub_type_has_no_content() -> None:
    assert not issubclass(BlankStub, Fragment) and not hasattr(BlankStub, "content")


def test_export_then_import_into_a_fresh_server_is_exact_and_idempotent(start_carmad, uid) -> None:
    c = start_carmad(*MANUAL_DREAM_ONLY).client()
    first, second = uid("exp-1"), uid("exp-2")
    c.put_fragment(first, "exported text", links=[second], tags=["x"], metadata={"k": [1, "two"]}, embedding=[0.5, 0.25])
    c.put_fragment(second, "second text")
    lines = c.export_fragments()
    assert lines[0]["carma_export"] == "header" and lines[-1] == {"carma_export": "end", "fragments": len(lines) - 2}
    exported = {line["id"]: line for line in lines[1:-1]}
    assert exported[first]["content"] == "exported text" and exported[first]["status"] == "ok"

    target = start_carmad(*MANUAL_DREAM_ONLY).client()
    counts = target.import_fragments(lines)
    assert counts["imported"] == len(exported) and counts["unchanged"] == 0
    copy = target.get_fragment(first)
    assert copy.content == "exported text" and copy.version == exported[first]["version"] and copy.metadata == {"k": [1, "two"]}
    assert target.import_fragments(lines)["unchanged"] == len(exported)
    assert {line["id"]: line for line in target.export_fragments()[1:-1]} == exported

    with pytest.raises(InvalidRequest) as bad:
        target.import_fragments([{"id": "x", "version": 0, "content": "y"}])
    assert bad.value.slug == "invalid-import"


@pytest.mark.live  # starts its own carmad, not through a fixture
def test_versions_past_2_53_are_exact_integers(uid: Callable[[str], str]) -> None:
    # Issue 28: carmad served 2^53 + 1 as 2^53 (and 2^60 as 1.152921504606847e+18). The client reads
    # the integer the server now prints, in the body and the ETag alike, also for the next write.
    carmad = Carmad(MANUAL_DREAM_ONLY)  # its own: every later write anywhere in it gets a version past 2^53
    try:
        _exact_versions(carmad, uid("big-version"))
    finally:
        carmad.stop()


def _exact_versions(carmad: Carmad, fid: str) -> None:
    import json
    import urllib.request

    big = 2**53 + 1
    stamp = "2026-01-02T03:04:05.006Z"
    line = json.dumps({"id": fid, "version": big, "content": "far ahead", "created_at": stamp, "updated_at": stamp})
    request = urllib.request.Request(f"{carmad.url}/import", data=line.encode(), method="POST",
                                     headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(request) as answer:
        assert json.loads(answer.read())["imported"] == 1
    with carmad.client() as client:
        fragment = client.get_fragment(fid)
        assert fragment.version == big and isinstance(fragment.version, int)  # type: ignore[union-attr]
        written = client.put_fragment(fid, "written after")
        assert written.version == big + 1
        assert client.get_fragment(fid).version == big + 1  # type: ignore[union-attr]
