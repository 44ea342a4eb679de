"""Parsing and error mapping, offline (shapes taken from openapi.yaml)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from carma_client import (
    BlankStub,
    CarmaError,
    FragmentNotFound,
    Fragment,
    InsufficientStorage,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    QueryHit,
    ReadOnlyStorage,
    ServerError,
    Unavailable,
    format_condition,
)
from carma_client._http import Response, parse_retry_after, problem_error
from carma_client.models import parse_timestamp, version_from_etag

RECONSTRUCTED = {
    "id": "man1.grep.0", "version": 42, "content": "grep searches files for patterns.", "links": ["man1.egrep.0"],
    "tags": [], "metadata": {}, "size": 33, "created_at": "2026-11-29T23:40:00.123Z",
    "updated_at": "2026-11-30T01:00:00.000Z", "status": "reconstructed", "checksum": "crc32c:0badf00d",
    "confidence": 0.61, "sources": ["man1.egrep.0", "man1.sed.0"], "method": "context-extractive-v1",
    "reconstructed_at": "2026-11-30T01:00:00.000Z",
}
BLANK = {
    "id": "note-1", "status": "blank", "rebuild_needed": True, "version": 3, "links": ["note-2"], "tags": ["infra"],
    "lost_at": "2026-11-30T10:00:00.000Z", "reason": "checksum_mismatch", "detected_by": "scrub",
    "rebuild": {"queued_at": None, "eta_seconds": 30},
}


def test_reconstructed_fragment_carries_how_it_was_rebuilt() -> None:
    fragment = Fragment.from_json(RECONSTRUCTED, etag='W/"42"')
    assert fragment.is_reconstructed and not fragment.is_exact
    assert fragment.reconstruction is not None
    assert fragment.reconstruction.confidence == 0.61
    assert fragment.reconstruction.sources == ["man1.egrep.0", "man1.sed.0"]
    assert fragment.reconstruction.method == "context-extractive-v1"
    assert version_from_etag(fragment.etag) == 42
    assert fragment.created_at == datetime(2026, 11, 29, 23, 40, 0, 123000, tzinfo=timezone.utc)


def test_a_blank_stub_is_never_a_fragment() -> None:
    with pytest.raises(ValueError):
        Fragment.from_json(BLANK)
    stub = BlankStub.from_json(BLANK, retry_after=30)
    assert stub.reason == "checksum_mismatch" and stub.rebuild.queued_at is None and stub.rebuild.eta_seconds == 30
    with pytest.raises(ValueError):
        BlankStub.from_json(RECONSTRUCTED)
    hit = QueryHit.from_json({"id": "x", "score": 0.5, "version": 1, "tags": [], "links": [], "status": "blank",
                              "rebuild_needed": True})
    assert hit.is_blank and hit.content is None


def test_conditions_and_retry_after() -> None:
    assert format_condition(17) == '"17"'
    assert format_condition([1, 'W/"2"']) == '"1", W/"2"'
    assert format_condition("*") == "*"
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_timestamp(None) is None


def _response(status: int, body: bytes = b"", kind: str = "application/problem+json") -> Response:
    return Response(status=status, reason="Reason", headers={"content-type": kind}, body=body)


@pytest.mark.parametrize("status,slug,cls", [
    (404, "fragment-not-found", FragmentNotFound),
    (404, "not-found", NotFound),
    (412, "precondition-failed", PreconditionFailed),
    (503, "read-only-storage", ReadOnlyStorage),
    (507, "insufficient-storage", InsufficientStorage),
    (400, "some-future-slug", InvalidRequest),
    (503, "some-future-slug", Unavailable),
    (502, "some-future-slug", ServerError),
])
def test_problem_mapping(status: int, slug: str, cls: type) -> None:
    body = ('{"type":"urn:carma:problem:%s","title":"T","status":%d,"detail":"D"}' % (slug, status)).encode()
    error = problem_error(_response(status, body))
    assert type(error) is cls and isinstance(error, CarmaError)
    assert (error.type, error.status, error.title, error.detail) == (f"urn:carma:problem:{slug}", status, "T", "D")


def test_an_html_error_page_still_maps_by_status() -> None:
    error = problem_error(_response(431, b"<html>too large</html>", "text/html"))
    assert isinstance(error, InvalidRequest) and error.type == "about:blank" and error.status == 431
