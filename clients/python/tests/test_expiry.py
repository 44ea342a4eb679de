"""Per-fragment expiry (``ttl`` / ``expires_at``) through the client, against a real carmad."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest

from carma_client import CarmaClient, Fragment, FragmentNotFound, InvalidRequest


def wait_until_gone(client: CarmaClient, fid: str, deadline_seconds: float = 20.0) -> bool:
    """Polls until the fragment answers 404 (outcome with a deadline, not a timing assertion)."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        try:
            client.get_fragment(fid)
        except FragmentNotFound:
            return True
        time.sleep(0.05)
    return False


def test_ttl_expires_the_fragment(client: CarmaClient, uid: Callable[[str], str]) -> None:
    fid = uid("ttl")
    put = client.put_fragment(fid, "short-lived", ttl=1, tags=[fid])
    assert put.fragment.expires_at is not None
    assert put.fragment.expires_at > datetime.now(timezone.utc) - timedelta(seconds=5)
    got = client.get_fragment(fid)
    assert isinstance(got, Fragment) and got.expires_at == put.fragment.expires_at
    assert wait_until_gone(client, fid)
    assert client.list_fragments(tag=fid).items == []
    again = client.put_fragment(fid, "back, for good", if_none_match="*")
    assert again.created and again.fragment.expires_at is None


def test_expires_at_round_trips_and_bad_values_are_refused(client: CarmaClient, uid: Callable[[str], str]) -> None:
    fid = uid("expires-at")
    when = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    put = client.put_fragment(fid, "kept for an hour", expires_at=when)
    assert put.fragment.expires_at == when
    with pytest.raises(InvalidRequest) as past:
        client.put_fragment(fid, "never readable", expires_at=datetime.now(timezone.utc) - timedelta(minutes=1))
    assert past.value.field == "expires_at"
    with pytest.raises(InvalidRequest):
        client.put_fragment(fid, "bad", expires_at="next tuesday")
    with pytest.raises(InvalidRequest):
        client.put_fragment(fid, "bad", ttl=0)
    with pytest.raises(ValueError):
        client.put_fragment(fid, "both", ttl=5, expires_at=when)
    got = client.get_fragment(fid)
    assert isinstance(got, Fragment) and got.content == "kept for an hour" and got.version == put.version
