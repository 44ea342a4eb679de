"""Fixtures for the namespace suite: real carmad processes (the Python client's fixtures, loaded
under another module name, as Tests/MCP does) with an admin token."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

_spec = importlib.util.spec_from_file_location("carma_server_fixtures_ns", REPO_ROOT / "clients/python/tests/conftest.py")
assert _spec and _spec.loader
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

Carmad = fixtures.Carmad
MANUAL_DREAM_ONLY = fixtures.MANUAL_DREAM_ONLY
carmad_binary = fixtures.carmad_binary

ADMIN = "admin-token-for-the-namespace-suite"


@pytest.fixture
def start_carmad(tmp_path: Path) -> Iterator[Callable[..., "Carmad"]]:
    """Starts carmad with `extra_args`; with `admin=True`, also with the suite's admin token."""
    started: List[Carmad] = []
    token_file = tmp_path / "admin.token"
    token_file.write_text(ADMIN + "\n")
    token_file.chmod(0o600)

    def start(*extra_args: str, admin: bool = True) -> Carmad:
        args = [*MANUAL_DREAM_ONLY, *extra_args]
        if admin:
            args += ["--auth-token-file", str(token_file)]
        server = Carmad(args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


class Store:
    """carmad on a data directory that outlives its processes: kill -9, restart, reindex."""

    def __init__(self, root: Path, token_file: Path) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.token_file = token_file
        self.process = None
        self.url = ""

    def start(self) -> "Store":
        import json
        import subprocess
        import time
        log_path = self.root / "carmad.log"
        self._log = open(log_path, "ab")
        args = [str(carmad_binary()), "--data-dir", str(self.data_dir), "--port", "0", "--log-format", "json",
                "--auth-token-file", str(self.token_file), *MANUAL_DREAM_ONLY]
        offset = log_path.stat().st_size
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for line in log_path.read_bytes()[offset:].decode("utf-8", "replace").splitlines():
                if "carmad listening" in line:
                    self.url = f"http://127.0.0.1:{json.loads(line)['http.port']}"
                    return self
            if self.process.poll() is not None:
                raise RuntimeError(f"carmad exited: {log_path.read_text()[-2000:]}")
            time.sleep(0.02)
        raise RuntimeError("carmad did not start")

    def kill9(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self._log.close()

    def reindex(self) -> None:
        import subprocess
        subprocess.run([str(carmad_binary()), "reindex", "--data-dir", str(self.data_dir)], check=True, capture_output=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    token_file = tmp_path / "admin.token"
    token_file.write_text(ADMIN + "\n")
    token_file.chmod(0o600)
    server = Store(tmp_path, token_file)
    yield server
    if server.process and server.process.poll() is None:
        server.kill9()
