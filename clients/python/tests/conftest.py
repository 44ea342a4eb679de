"""Fixtures: real carmad processes on free ports, and the one place that knows the disk layout.

The binary is ``$CARMA_BIN`` or ``.build/debug/carmad`` under the repository root. Like the Swift
live tests (``Tests/CarmaTesting/ServerProcess.swift``), carmad is started with ``--port 0`` and
JSON logs, and the port it bound is read back from its ``carmad listening`` line: no race for a
port picked in advance.

Every test that uses one of those servers (the ``carmad``, ``client`` or ``start_carmad``
fixtures) is marked ``live`` here, so ``pytest -m "not live"`` (or ``-k "not live"``) runs the
offline tests alone, without a carmad binary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
# The tests exercise the source tree, installed or not.
sys.path.insert(0, str(HERE.parent / "src"))

from carma_client import CarmaClient  # noqa: E402

#: Keeps the dream engine from starting cycles on its own, so a test decides when (as LiveHelpers.swift).
MANUAL_DREAM_ONLY = ["--dream-interval", "3600", "--dream-max-interval", "3600", "--dream-idle-delay", "100000"]


def carmad_binary() -> Path:
    path = Path(os.environ.get("CARMA_BIN") or REPO_ROOT / ".build" / "debug" / "carmad")
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"carmad not found at {path}: build it (swift build --product carmad) or set CARMA_BIN", pytrace=False)
    return path


class Carmad:
    """One carmad process with its own data directory."""

    def __init__(self, extra_args: Optional[List[str]] = None) -> None:
        binary = carmad_binary()
        self.root = Path(tempfile.mkdtemp(prefix="carma-py-"))
        self.data_dir = self.root / "data"
        self.log_path = self.root / "carmad.log"
        self.args = [str(binary), "--data-dir", str(self.data_dir), "--port", "0", "--log-format", "json",
                     *(extra_args or [])]
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self.port = self._wait_for_port()
        except BaseException as error:
            log = self.log
            self.stop()
            raise RuntimeError(f"carmad did not start ({error}); its log:\n{log}") from None
        self.url = f"http://127.0.0.1:{self.port}"

    def _wait_for_port(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log.splitlines():
                if "carmad listening" not in line:
                    continue
                try:
                    return int(json.loads(line)["http.port"])
                except (ValueError, KeyError):
                    continue
            if self.process.poll() is not None:
                raise RuntimeError(f"carmad exited with {self.process.returncode}")
            time.sleep(0.02)
        raise RuntimeError(f"no 'carmad listening' line within {timeout} s")

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def client(self, **kwargs: object) -> CarmaClient:
        return CarmaClient(self.url, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)
        return self.process.returncode


# -- disk damage: the only code that knows the on-disk layout -------------------------------------


def lose_payload(server: Carmad, fragment_id: str) -> None:
    """Makes ``fragment_id``'s stored record unreadable, so carmad must serve it blank.

    The one place here that touches the storage layout, through the repository's
    ``scripts/zero-records.py``: every record of the fragment in the primary log is zeroed in
    place, as a bad sector would (the running carmad reads it as a checksum mismatch); the
    redundancy log is left alone, so a dream cycle restores it exactly.
    """
    script = Path(__file__).resolve().parents[3] / "scripts" / "zero-records.py"
    done = subprocess.run([sys.executable, str(script), str(server.data_dir), fragment_id], capture_output=True, text=True, check=True)
    if int(done.stdout.strip() or 0) == 0:
        raise AssertionError(f"no record for {fragment_id!r} under {server.data_dir}")


# -- fixtures ---------------------------------------------------------------------------------

#: Fixtures that start carmad: a test using any of them is a live test.
LIVE_FIXTURES = {"carmad", "client", "start_carmad"}


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    for item in items:
        if LIVE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)


@pytest.fixture(scope="session")
def carmad() -> Iterator[Carmad]:
    """A shared server for tests that need no special flags (each test uses its own ids)."""
    server = Carmad(MANUAL_DREAM_ONLY)
    yield server
    server.stop()


@pytest.fixture
def client(carmad: Carmad) -> Iterator[CarmaClient]:
    with carmad.client() as c:
        yield c


@pytest.fixture
def start_carmad() -> Iterator[Callable[..., Carmad]]:
    """Starts servers with extra flags for one test, and stops them after it."""
    started: List[Carmad] = []

    def start(*extra_args: str) -> Carmad:
        server = Carmad(list(extra_args))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def uid() -> Callable[[str], str]:
    """Unique fragment ids, so tests sharing a server never see each other's fragments."""
    run = uuid.uuid4().hex[:8]
    return lambda name: f"t{run}-{name}"
