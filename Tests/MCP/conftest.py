"""Fixtures for driving ``carma mcp`` with a real MCP client (the ``mcp`` package from PyPI).

carmad processes come from the Python client's fixtures (``clients/python/tests/conftest.py``:
real carmad on port 0, and the one helper that damages records on disk), loaded under another
module name so that this directory keeps a conftest of its own. The ``carma`` binary is
``$CARMA_CLI``, else ``carma`` next to ``$CARMA_BIN``, else ``.build/debug/carma``.
"""

from __future__ import annotations

import importlib.util
import os
from contextlib import asynccontextmanager
from pathlib import Path
import sys
from typing import AsyncIterator, Callable, Iterator, List, Optional, TextIO

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

_spec = importlib.util.spec_from_file_location("carma_server_fixtures", REPO_ROOT / "clients/python/tests/conftest.py")
assert _spec and _spec.loader
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

Carmad = fixtures.Carmad
MANUAL_DREAM_ONLY = fixtures.MANUAL_DREAM_ONLY
lose_payload = fixtures.lose_payload

mcp = pytest.importorskip("mcp", reason="the mcp package (install-deps.sh --test installs it)")
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402


def carma_binary() -> Path:
    if os.environ.get("CARMA_CLI"):
        path = Path(os.environ["CARMA_CLI"])
    elif os.environ.get("CARMA_BIN"):
        path = Path(os.environ["CARMA_BIN"]).parent / "carma"
    else:
        path = REPO_ROOT / ".build" / "debug" / "carma"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"carma not found at {path}: build it (swift build --product carma) or set CARMA_CLI", pytrace=False)
    return path


@asynccontextmanager
async def mcp_session(server_url: str, *extra_args: str, errlog: Optional[TextIO] = None,
                      env: Optional[dict] = None) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session with ``carma mcp --server server_url`` as its subprocess
    (its standard error to ``errlog``, a real file, when given; ``env`` added to its environment)."""
    params = StdioServerParameters(command=str(carma_binary()), args=["mcp", "--server", server_url, *extra_args],
                                   env={**os.environ, **env} if env else None)
    async with stdio_client(params, errlog=errlog or sys.stderr) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


@pytest.fixture(scope="module")
def carmad() -> Iterator[Carmad]:
    server = Carmad(MANUAL_DREAM_ONLY)
    yield server
    server.stop()


@pytest.fixture
def start_carmad() -> Iterator[Callable[..., Carmad]]:
    started: List[Carmad] = []

    def start(*extra_args: str) -> Carmad:
        server = Carmad(list(extra_args))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
