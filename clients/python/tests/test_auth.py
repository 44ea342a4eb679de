"""Bearer tokens: writes need one when carmad runs with --auth-token-file (reads too with --protect-reads)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from carma_client import CarmaClient, Fragment, Unauthorized

from conftest import Carmad

TOKEN = "py-client-test-token-0123456789"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    return path


def test_writes_need_the_token(start_carmad: Callable[..., Carmad], token_file: Path) -> None:
    server = start_carmad("--auth-token-file", str(token_file))
    url = server.url
    anonymous = CarmaClient(url)
    with pytest.raises(Unauthorized) as denied:
        anonymous.put_fragment("secret", "nope")
    assert denied.value.status == 401
    assert denied.value.type == "urn:carma:problem:unauthorized"
    assert denied.value.headers.get("www-authenticate") == 'Bearer realm="carma"'
    with pytest.raises(Unauthorized):
        CarmaClient(url, token=TOKEN[:-1] + "X").put_fragment("secret", "nope")
    with pytest.raises(Unauthorized):
        anonymous.start_dream()

    authorized = CarmaClient(url, token_file=str(token_file))  # the file's newline is not part of the token
    assert authorized.put_fragment("secret", "yes").created
    # Reads stay open without --protect-reads.
    assert isinstance(anonymous.get_fragment("secret"), Fragment)
    with pytest.raises(Unauthorized):
        anonymous.delete_fragment("secret")
    authorized.delete_fragment("secret")
    assert authorized.dream(timeout=60).state == "finished"


def test_protected_reads(start_carmad: Callable[..., Carmad], token_file: Path) -> None:
    server = start_carmad("--auth-token-file", str(token_file), "--protect-reads")
    url = server.url
    authorized = CarmaClient(url, token=TOKEN)
    authorized.put_fragment("guarded", "only with the token")
    anonymous = CarmaClient(url)
    for call in (lambda: anonymous.get_fragment("guarded"), lambda: anonymous.head_fragment("guarded"),
                 anonymous.list_fragments, anonymous.metrics, anonymous.dream_status):
        with pytest.raises(Unauthorized):
            call()
    assert anonymous.healthz().status == "ok"  # probes never need it
    assert authorized.get_fragment("guarded").content == "only with the token"  # type: ignore[union-attr]
    assert "carma_fragments" in authorized.metrics()
