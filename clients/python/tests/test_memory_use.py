"""Memory as applications use it: ``text`` on every result, list parameters that refuse a
``str``, empty content refused, typed readiness and ``wait_until_indexed``, honest rebuild
information, ``min_score``.

New server fields (``rebuild.state``, ``retrieval.state``, ``min_score``) are tested offline on
canned JSON, so the suite passes against servers with and without them; the live tests use only
what every server sends.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional

import pytest

from carma_client import (
    BlankStub,
    CarmaClient,
    CarmaError,
    Fragment,
    FragmentBlank,
    FragmentContext,
    IndexingTimeout,
    QueryResponse,
    Readiness,
    RebuildInfo,
)
from carma_client._http import Response

from conftest import MANUAL_DREAM_ONLY, Carmad, lose_payload

NOW = "2026-11-30T10:00:00.000Z"
OK_FRAGMENT = {
    "id": "pref-1", "version": 1, "content": "Maya prefers oat milk.", "links": [], "tags": ["pref"], "metadata": {},
    "size": 22, "created_at": NOW, "updated_at": NOW, "status": "ok", "checksum": "crc32c:00000000",
}
RECONSTRUCTED = dict(OK_FRAGMENT, id="pref-2", content="Maya likes oat milk (approx.)", status="reconstructed",
                     confidence=0.6, sources=["pref-1"], method="context-extractive-v1", reconstructed_at=NOW)
BLANK_OLD_SERVER = {
    "id": "pref-3", "status": "blank", "rebuild_needed": True, "version": 3, "links": ["pref-1"], "tags": ["pref"],
    "lost_at": NOW, "reason": "checksum_mismatch", "detected_by": "read", "rebuild": {"queued_at": NOW, "eta_seconds": 30},
}
BLANK_FAILED = dict(BLANK_OLD_SERVER, rebuild={"state": "failed", "queued_at": NOW, "attempts": 3,
                                               "last_error": "no copy and no sources left"})
BLANK_QUEUED = dict(BLANK_OLD_SERVER, rebuild={"state": "queued", "queued_at": NOW, "attempts": 1,
                                               "last_error": "redundancy copy unreadable",
                                               "next_attempt_at": "2026-11-30T10:05:00.000Z", "eta_seconds": 300})


class FakeTransport:
    """Records requests and answers them from a list of canned responses (no server)."""

    def __init__(self, *answers: Response) -> None:
        self.answers = list(answers)
        self.requests: List[Dict[str, Any]] = []

    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        self.requests.append(dict(kwargs, method=method, path=path))
        if not self.answers:
            raise AssertionError(f"unexpected request {method} {path}")
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def close(self) -> None:
        pass


def json_response(status: int, body: Any, headers: Optional[Dict[str, str]] = None) -> Response:
    return Response(status=status, reason="", headers=dict({"content-type": "application/json"}, **(headers or {})),
                    body=json.dumps(body).encode())


def offline(*answers: Response) -> tuple:
    client = CarmaClient("http://127.0.0.1:9")
    fake = FakeTransport(*answers)
    client._http = fake  # type: ignore[assignment]
    return client, fake


def readyz_json(backlog: int = 0, text_ready: bool = True, model: Optional[str] = "all-MiniLM-L6-v2",
                state: Optional[str] = None) -> Dict[str, Any]:
    retrieval: Dict[str, Any] = {"text_index_ready": text_ready, "embedding_model": model,
                                 "signals": ["text", "meaning"] if model else ["text"], "embedded": 10 - backlog,
                                 "embedding_backlog": backlog}
    if state is not None:
        retrieval["state"] = state
    return {"status": "ready", "fragments": 10, "pending_writes": 0, "retrieval": retrieval}


# -- text on every result type ----------------------------------------------------------------


def test_every_result_type_has_a_text_that_is_never_none() -> None:
    ok = Fragment.from_json(OK_FRAGMENT)
    rebuilt = Fragment.from_json(RECONSTRUCTED)
    stub = BlankStub.from_json(BLANK_OLD_SERVER)
    assert (ok.text, ok.status, ok.is_blank, ok.is_exact) == ("Maya prefers oat milk.", "ok", False, True)
    assert (rebuilt.text, rebuilt.is_reconstructed, rebuilt.is_exact) == ("Maya likes oat milk (approx.)", True, False)
    assert (stub.text, stub.is_blank, stub.rebuild_needed, stub.status) == ("", True, True, "blank")
    assert not hasattr(stub, "content"), "a blank stub still has no content attribute"
    assert ok.content == ok.text  # content kept as it was

    answer = QueryResponse.from_json({"took_ms": 1.0, "index": {"ready": True}, "results": [
        {"id": "pref-1", "score": 0.9, "version": 1, "tags": [], "links": [], "status": "ok", "content": "Maya prefers oat milk."},
        {"id": "pref-3", "score": 0.5, "version": 3, "tags": [], "links": [], "status": "blank", "rebuild_needed": True},
        {"id": "pref-2", "score": 0.4, "version": 1, "tags": [], "links": [], "status": "reconstructed",
         "content": "Maya likes oat milk (approx.)", "confidence": 0.6},
    ]})
    hits = answer.results
    assert "; ".join(h.text for h in hits) == "Maya prefers oat milk.; ; Maya likes oat milk (approx.)"
    assert [h.is_blank for h in hits] == [False, True, False] and hits[1].content is None and hits[1].rebuild_needed

    context = FragmentContext.from_json({"id": "pref-1", "status": "ok",
                                         "links": [{"id": "pref-3", "status": "blank"}], "backlinks": [],
                                         "similar": [{"id": "pref-2", "status": "reconstructed", "score": 0.8}]})
    entries = context.links + context.similar
    assert [e.text for e in entries] == ["", ""] and entries[0].is_blank and not entries[1].is_blank
    mixed = [ok, stub, rebuilt, *hits, *entries]
    assert all(isinstance(item.text, str) for item in mixed)


# -- list parameters refuse a str, empty content is refused ---------------------------------


@pytest.mark.parametrize("call", [
    lambda c: c.put_fragment("x", "some text", tags="pref"),
    lambda c: c.put_fragment("x", "some text", links="a"),
    lambda c: c.put_fragment("x", "some text", embedding="0.1"),
    lambda c: c.put_fragment("x", "some text", tags=[1, 2]),
    lambda c: c.put_fragment("x", "some text", tags={"pref": True}),
    lambda c: c.query("oat milk", tags="pref"),
    lambda c: c.query("oat milk", status="ok"),
    lambda c: c.query(embedding="0.5"),
    lambda c: c.import_fragments('{"carma_export":"header"}'),
    lambda c: c.put_fragment("x", b"bytes are not text"),
])
def test_a_str_where_a_list_belongs_is_a_type_error_before_sending(call: Callable[[CarmaClient], Any]) -> None:
    client, fake = offline()
    with pytest.raises(TypeError) as error:
        call(client)
    assert "must be" in str(error.value)
    assert fake.requests == []


def test_the_type_error_says_what_to_write() -> None:
    client, _ = offline()
    with pytest.raises(TypeError, match=r"tags must be a list, not a str: write tags=\['pref'\]"):
        client.put_fragment("x", "some text", tags="pref")


def test_lists_and_tuples_still_work() -> None:
    client, fake = offline(json_response(201, OK_FRAGMENT, {"etag": '"1"'}))
    client.put_fragment("pref-1", "Maya prefers oat milk.", tags=("pref",), links=["pref-2"], embedding=(1, 0.5))
    body = fake.requests[0]["json_body"]
    assert (body["tags"], body["links"], body["embedding"]) == (["pref"], ["pref-2"], [1.0, 0.5])


def test_empty_content_is_refused_before_sending() -> None:
    client, fake = offline()
    with pytest.raises(ValueError, match="empty"):
        client.put_fragment("x", "")
    assert fake.requests == []


# -- readiness --------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,state", [
    ({}, "ready"),
    ({"backlog": 4}, "partial"),
    ({"text_ready": False}, "partial"),
    ({"model": None}, "text_only"),
    ({"model": None, "backlog": 0, "text_ready": False}, "partial"),
    ({"backlog": 4, "state": "ready"}, "ready"),  # the server's word wins when it gives one
])
def test_readiness_state_is_the_servers_or_derived(kwargs: Dict[str, Any], state: str) -> None:
    ready = Readiness.from_json(readyz_json(**kwargs))
    assert ready.state == state
    assert ready.embedding_backlog == kwargs.get("backlog", 0)
    assert ready.text_index_ready == kwargs.get("text_ready", True)


def test_readyz_is_typed() -> None:
    client, _ = offline(json_response(200, readyz_json(backlog=2)))
    ready = client.readyz()
    assert (ready.status, ready.fragments, ready.pending_writes) == ("ready", 10, 0)
    assert (ready.embedding_model, ready.embedded, ready.embedding_backlog, ready.state) == ("all-MiniLM-L6-v2", 8, 2, "partial")
    assert not ready.indexed


def test_wait_until_indexed_polls_until_the_backlog_is_drained() -> None:
    client, fake = offline(json_response(200, readyz_json(backlog=5)), json_response(200, readyz_json(backlog=1)),
                           json_response(200, readyz_json(backlog=0)))
    ready = client.wait_until_indexed(timeout=5, poll=0.01)
    assert ready.indexed and ready.state == "ready" and len(fake.requests) == 3


def test_wait_until_indexed_times_out_with_a_carma_error() -> None:
    client, _ = offline(json_response(200, readyz_json(backlog=7)))
    with pytest.raises(IndexingTimeout) as error:
        client.wait_until_indexed(timeout=0.05, poll=0.01)
    assert isinstance(error.value, CarmaError) and isinstance(error.value, TimeoutError)
    assert "embedding backlog is 7" in str(error.value)
    assert error.value.readiness is not None and error.value.readiness.embedding_backlog == 7


# -- rebuild information ----------------------------------------------------------------------


def test_rebuild_info_from_an_older_server() -> None:
    rebuild = BlankStub.from_json(BLANK_OLD_SERVER).rebuild
    assert rebuild.eta_seconds == 30 and rebuild.state is None and rebuild.attempts is None
    assert rebuild.describe() == "rebuild expected in 30 s"


def test_rebuild_info_without_a_planned_attempt_has_no_eta() -> None:
    stub = BlankStub.from_json(BLANK_FAILED, retry_after=None)
    rebuild = stub.rebuild
    assert rebuild.state == "failed" and rebuild.attempts == 3 and rebuild.last_error == "no copy and no sources left"
    assert rebuild.eta_seconds is None and rebuild.next_attempt_at is None and not rebuild.planned
    assert stub.retry_after is None
    assert rebuild.describe() == "no retry planned (failed after 3 attempts: no copy and no sources left)"
    assert "expected in" not in rebuild.describe()
    assert RebuildInfo.from_json({}).describe() == "no retry planned"
    assert RebuildInfo.from_json(None).eta_seconds is None


def test_rebuild_info_with_a_planned_attempt() -> None:
    rebuild = BlankStub.from_json(BLANK_QUEUED).rebuild
    assert rebuild.state == "queued" and rebuild.attempts == 1 and rebuild.eta_seconds == 300
    assert rebuild.next_attempt_at == datetime(2026, 11, 30, 10, 5, tzinfo=timezone.utc)
    assert rebuild.describe() == "rebuild expected in 300 s"
    without_eta = RebuildInfo.from_json({"state": "queued", "next_attempt_at": "2026-11-30T10:05:00.000Z"})
    assert without_eta.describe() == "rebuild attempt planned at 2026-11-30T10:05:00Z"


def test_a_strict_blank_without_a_planned_attempt_says_so() -> None:
    client, _ = offline(json_response(503, BLANK_FAILED, {"x-fragment-status": "blank"}))
    with pytest.raises(FragmentBlank) as error:
        client.get_fragment("pref-3", strict=True)
    message = str(error.value)
    assert "no retry planned" in message and "no copy and no sources left" in message
    assert "expected in" not in message and error.value.retry_after is None


def test_a_blank_with_unknown_version() -> None:
    stub = BlankStub.from_json(dict(BLANK_OLD_SERVER, version=None, rebuild_needed=False, reason="backend_unavailable",
                                    links=[], tags=[]))
    assert stub.version is None and not stub.rebuild_needed and stub.text == ""


# -- min_score --------------------------------------------------------------------------------


def _query_answer() -> Response:
    return json_response(200, {"took_ms": 1.0, "index": {"ready": True}, "results": []})


def test_min_score_is_sent_only_when_given() -> None:
    client, fake = offline(_query_answer())
    client.query("oat milk")
    client.query("oat milk", min_score=0.35)
    client.query("oat milk", min_score=0)
    bodies = [r["json_body"] for r in fake.requests]
    assert "min_score" not in bodies[0]
    assert bodies[1]["min_score"] == 0.35 and bodies[2]["min_score"] == 0.0


@pytest.mark.parametrize("value,error", [(1.5, ValueError), (-0.1, ValueError), ("0.3", TypeError), (True, TypeError)])
def test_min_score_out_of_range_is_refused(value: Any, error: type) -> None:
    client, fake = offline(_query_answer())
    with pytest.raises(error):
        client.query("oat milk", min_score=value)
    assert fake.requests == []


# -- live: what every server sends --------------------------------------------------------------


def test_live_refusals_happen_before_the_server(client: CarmaClient, uid: Callable[[str], str]) -> None:
    with pytest.raises(TypeError):
        client.put_fragment(uid("pref"), "Maya prefers oat milk.", tags="pref")
    with pytest.raises(ValueError):
        client.put_fragment(uid("empty"), "")
    stored = client.put_fragment(uid("pref"), "Maya prefers oat milk.", tags=["pref"])
    assert stored.fragment.tags == ["pref"] and stored.fragment.text == "Maya prefers oat milk."


def test_live_readiness_and_wait_until_indexed(client: CarmaClient, uid: Callable[[str], str]) -> None:
    client.put_fragment(uid("fact"), "Jonas booked flights to Lisbon for June.")
    ready = client.wait_until_indexed(timeout=30)
    assert ready.indexed and ready.embedding_backlog == 0 and ready.text_index_ready
    assert ready.state in ("ready", "text_only")
    assert (ready.state == "text_only") == (ready.embedding_model is None)
    assert ready.fragments >= 1


def test_live_joining_texts_over_results_with_a_blank(start_carmad: Callable[..., Carmad]) -> None:
    server = start_carmad("--cache-bytes", "0", *MANUAL_DREAM_ONLY)
    c = server.client()
    c.put_fragment("maya-1", "Maya Okafor is allergic to peanuts.", links=["maya-2"])
    c.put_fragment("maya-2", "Maya carries an adrenaline pen because of the peanut allergy.", links=["maya-1"])
    lose_payload(server, "maya-1")
    c.wait_until_indexed(timeout=30)
    hits = c.query("Maya peanuts allergy", k=5, mode="text").results
    assert {h.id for h in hits} == {"maya-1", "maya-2"}
    blank = next(h for h in hits if h.id == "maya-1")
    assert blank.is_blank and blank.text == "" and blank.content is None
    joined = "; ".join(h.text for h in hits)
    assert "adrenaline pen" in joined
    stub = c.get_fragment("maya-1")
    assert isinstance(stub, BlankStub) and stub.text == ""
    # Whatever this server says about the rebuild, the words are honest about it.
    assert stub.rebuild.describe().startswith(("rebuild expected in", "rebuild attempt planned", "no retry planned"))
    assert all(isinstance(n.text, str) for n in c.get_context("maya-2").links)
