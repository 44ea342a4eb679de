"""Blank stubs for real: a payload lost on disk, served flagged everywhere, then restored by a dream cycle.

The damage goes through ``conftest.lose_payload``, the single place that knows the disk layout.
"""

from __future__ import annotations

from typing import Callable, List

import pytest

from carma_client import BlankStub, CarmaClient, CarmaError, Fragment, FragmentBlank, FragmentNotFound

from conftest import MANUAL_DREAM_ONLY, Carmad, lose_payload

LOST_TEXT = "The build server moved to rack 4 in the north hall."


@pytest.fixture
def damaged(start_carmad: Callable[..., Carmad]) -> Carmad:
    """A server without payload cache (reads see the disk at once) and with note-1's payload lost."""
    server = start_carmad("--cache-bytes", "0", *MANUAL_DREAM_ONLY)
    with server.client() as c:
        c.put_fragment("note-1", LOST_TEXT, links=["note-2"], tags=["infra"], metadata={"k": "v"})
        c.put_fragment("note-2", "Rack 4 is next to the north hall's cooling unit.", links=["note-1"], tags=["infra"])
        c.put_fragment("note-3", "Lunch is served at noon.")
    lose_payload(server, "note-1")
    return server


def test_blank_is_a_stub_everywhere_then_a_dream_restores_it(damaged: Carmad) -> None:
    sleeps: List[float] = []
    c = CarmaClient(damaged.url, sleep=sleeps.append)

    stub = c.get_fragment("note-1")
    assert isinstance(stub, BlankStub) and not isinstance(stub, Fragment)
    assert not hasattr(stub, "content")
    assert stub.status == "blank" and stub.rebuild_needed
    assert stub.reason == "checksum_mismatch" and stub.detected_by == "read"
    assert stub.links == ["note-2"] and stub.tags == ["infra"]
    assert stub.lost_at is not None and stub.rebuild.eta_seconds >= 1
    assert stub.retry_after is not None and stub.retry_after >= 1
    with pytest.raises(CarmaError):
        c.get_content("note-1")

    with pytest.raises(FragmentBlank) as strict:
        c.get_fragment("note-1", strict=True)
    assert strict.value.status == 503 and strict.value.retry_after and strict.value.retry_after >= 1
    assert strict.value.stub is not None and strict.value.stub.id == "note-1"
    assert strict.value.headers.get("preference-applied") == "strict"
    assert sleeps == [], "a strict blank is a hard failure, never retried"

    head = c.head_fragment("note-1")
    assert head.is_blank and head.etag is None and head.retry_after
    with pytest.raises(FragmentBlank) as strict_head:
        c.head_fragment("note-1", strict=True)
    assert strict_head.value.stub is None  # HEAD has no body to carry it

    blanks = c.list_fragments(status="blank")
    assert [(s.id, s.reason) for s in blanks.items] == [("note-1", "checksum_mismatch")]
    assert blanks.items[0].is_blank

    hits = c.query("build server rack north hall", k=5)
    blank_hits = {hit.id: hit for hit in hits.blanks}
    assert "note-1" in blank_hits
    assert blank_hits["note-1"].content is None and blank_hits["note-1"].rebuild_needed
    assert all(hit.content for hit in hits.results if not hit.is_blank)

    context = c.get_context("note-2")
    assert [(n.id, n.status) for n in context.links] == [("note-1", "blank")]
    assert c.get_context("note-1").status == "blank"
    assert c.topology().counts.get("blank") == 1
    assert c.dream_status().queue.depth >= 1

    report = c.dream(timeout=120)
    assert report.state == "finished"
    assert report.outcomes.get("recovered") == 1
    assert report.repairs.get("redundancy", {}).get("recovered") == 1
    recovered = [e for e in report.events if e.id == "note-1" and e.outcome == "recovered"]
    assert recovered and recovered[0].tier == "redundancy" and recovered[0].was == "blank"

    back = c.get_fragment("note-1")
    assert isinstance(back, Fragment) and back.is_exact
    assert back.content == LOST_TEXT and back.metadata == {"k": "v"}
    assert c.get_content("note-1") == LOST_TEXT
    history = c.get_history("note-1")
    assert history.kinds == ["created", "lost", "queued", "recovered"]
    lost, recovered_event = history.events[1], history.events[-1]
    assert lost.reason == "checksum_mismatch" and lost.detected_by == "read"
    assert recovered_event.tier == "redundancy" and recovered_event.cycle == report.id and recovered_event.was == "blank"
    assert c.dream_status().queue.depth == 0
    assert list(c.iter_fragments(status="blank")) == []


def test_a_blank_can_be_overwritten_or_deleted(damaged: Carmad) -> None:
    c = damaged.client()
    assert isinstance(c.get_fragment("note-1"), BlankStub)
    rewritten = c.put_fragment("note-1", "written again by hand")
    assert rewritten.created is False and rewritten.fragment.status == "ok"
    assert c.get_fragment("note-1").content == "written again by hand"  # type: ignore[union-attr]

    lose_payload(damaged, "note-3")
    assert isinstance(c.get_fragment("note-3"), BlankStub)
    c.delete_fragment("note-3")
    with pytest.raises(FragmentNotFound):
        c.get_fragment("note-3")
