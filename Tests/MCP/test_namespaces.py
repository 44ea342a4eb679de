"""Namespaces from the command line: ``carma mcp --namespace``, ``carma export/import --namespace`` and
``carma namespaces``, against a live carmad (the API of docs/api.md's namespaces section)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Callable, List, Optional

import pytest

from conftest import MANUAL_DREAM_ONLY, Carmad, carma_binary, mcp_session

pytestmark = pytest.mark.anyio

MEMORY_TOOLS = {"remember", "recall", "get", "forget", "list"}


def text_of(result) -> str:
    return "\n".join(part.text for part in result.content if part.type == "text")


def fresh(prefix: str) -> str:
    """A namespace name no other test uses (the module's carmad is shared)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def carma(*args: str, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Runs the carma CLI; CARMA_* variables of the test's environment are not passed on."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("CARMA_")}
    return subprocess.run([str(carma_binary()), *args], capture_output=True, text=True, timeout=120, env={**clean, **(env or {})})


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{done.args[1:]} exited {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return done


# -- no carmad needed --------------------------------------------------------------------------


@pytest.mark.parametrize("name", [".hidden", "a/b", "a b", "", "é", "n" * 201, "../x", "a%2Fb"])
def test_an_invalid_namespace_name_exits_2_with_the_rule(name: str) -> None:
    commands: List[List[str]] = [
        ["export", "--namespace", name],
        ["import", "--namespace", name, "/nonexistent"],
        ["get", "x", "--namespace", name],
        ["put", "x", "--content", "y", "--namespace", name],
        ["query", "x", "--namespace", name],
        ["mcp", "--namespace", name],
        ["namespaces", "show", name],
        ["namespaces", "token", "create", name],
    ]
    for command in commands:
        done = carma(*command, "--server", "http://127.0.0.1:1")
        assert done.returncode == 2, (command, done.returncode, done.stderr)
        assert "invalid namespace name" in done.stderr and "1–200 characters" in done.stderr, (command, done.stderr)
        assert done.stderr.count("invalid namespace name") == 1
    from_env = carma("list", "--server", "http://127.0.0.1:1", env={"CARMA_NAMESPACE": name})
    assert from_env.returncode == 2 and "CARMA_NAMESPACE" in from_env.stderr


def test_deleting_a_namespace_needs_yes() -> None:
    done = carma("namespaces", "delete", "alice", "--server", "http://127.0.0.1:1")
    assert done.returncode == 2 and "--yes" in done.stderr


async def test_a_namespace_session_offers_only_the_memory_tools(carmad: Carmad) -> None:
    async with mcp_session(carmad.url, "--namespace", "alice") as session:
        assert {tool.name for tool in (await session.list_tools()).tools} == MEMORY_TOOLS
        assert "namespace 'alice'" in (session.instructions or "")
        from mcp.shared.exceptions import MCPError

        with pytest.raises(MCPError):
            await session.call_tool("dream", {})
    # 'default' is the unprefixed routes: every tool, as without --namespace.
    async with mcp_session(carmad.url, "--namespace", "default") as session:
        assert {tool.name for tool in (await session.list_tools()).tools} == MEMORY_TOOLS | {"dream", "status"}


# -- live namespaces ---------------------------------------------------------------------------


async def test_two_sessions_on_two_namespaces_do_not_share_memories(carmad: Carmad) -> None:
    alice, bob = fresh("alice"), fresh("bob")
    async with mcp_session(carmad.url, "--namespace", alice) as in_alice, mcp_session(carmad.url, "--namespace", bob) as in_bob:
        # The same id in both: two fragments, each namespace's own.
        stored = await in_alice.call_tool("remember", {"id": "note-1", "content": "The launch code word is marmalade.", "tags": ["secret"]})
        assert not stored.is_error, text_of(stored)
        assert stored.structured_content["id"] == "note-1" and stored.structured_content["created"] is True
        other = await in_bob.call_tool("remember", {"id": "note-1", "content": "Bob's bicycle is parked by the river gate."})
        assert not other.is_error, text_of(other)
        assert other.structured_content["created"] is True, "bob's note-1 is a new fragment, not alice's replaced"
        made = await in_alice.call_tool("remember", {"content": "The north hall's cooling unit is loud on Mondays.", "links": ["note-1"]})
        assert not made.is_error, text_of(made)

        found = await in_alice.call_tool("recall", {"text": "launch code word", "k": 5})
        assert not found.is_error, text_of(found)
        hits = found.structured_content["results"]
        assert hits and hits[0]["id"] == "note-1" and hits[0]["content"] == "The launch code word is marmalade."

        elsewhere = await in_bob.call_tool("recall", {"text": "launch code word marmalade", "k": 10})
        assert not elsewhere.is_error, text_of(elsewhere)
        assert all("marmalade" not in hit.get("content", "") for hit in elsewhere.structured_content["results"])
        # The answer may repeat the question; alice's stored sentence must not appear.
        assert "The launch code word is marmalade." not in text_of(elsewhere)

        got = await in_bob.call_tool("get", {"id": "note-1"})
        assert got.structured_content["content"] == "Bob's bicycle is parked by the river gate."
        assert got.structured_content["id"] == "note-1", "ids shown are the namespace's own"
        mine = await in_alice.call_tool("get", {"id": made.structured_content["id"]})
        assert mine.structured_content["links"] == ["note-1"], "links are the namespace's own ids"
        assert (await in_bob.call_tool("get", {"id": made.structured_content["id"]})).is_error

        listed = await in_bob.call_tool("list", {})
        assert [item["id"] for item in listed.structured_content["items"]] == ["note-1"]

        forgotten = await in_bob.call_tool("forget", {"id": "note-1"})
        assert not forgotten.is_error, text_of(forgotten)
        still = await in_alice.call_tool("get", {"id": "note-1"})
        assert still.structured_content["content"] == "The launch code word is marmalade."

    # Neither is in the default namespace.
    async with mcp_session(carmad.url) as in_default:
        assert (await in_default.call_tool("get", {"id": "note-1"})).is_error


async def test_recall_in_a_namespace_never_written_is_empty_not_an_error(carmad: Carmad) -> None:
    async with mcp_session(carmad.url, "--namespace", fresh("empty")) as session:
        found = await session.call_tool("recall", {"text": "anything at all"})
        assert not found.is_error, text_of(found)
        assert found.structured_content["results"] == [] and found.structured_content["namespace_exists"] is False
        listed = await session.call_tool("list", {})
        assert not listed.is_error and listed.structured_content["items"] == []
        assert (await session.call_tool("get", {"id": "x"})).structured_content["status"] == 404


async def test_a_namespace_token_works_in_its_namespace_only_and_is_never_logged(start_carmad: Callable[..., Carmad], tmp_path: Path) -> None:
    admin_file = tmp_path / "admin-token"
    admin_file.write_text("admin-s3cret-for-namespace-tests\n")
    admin_file.chmod(0o600)
    server = start_carmad("--auth-token-file", str(admin_file), *MANUAL_DREAM_ONLY)
    admin = ["--server", server.url, "--token-file", str(admin_file)]
    ok(carma("namespaces", "create", "alice", "--max-fragments", "100", *admin))
    ok(carma("namespaces", "create", "bob", *admin))
    # One limit set later keeps the other.
    ok(carma("namespaces", "set", "alice", "--max-bytes", "5000000", *admin))
    shown = json.loads(ok(carma("namespaces", "show", "alice", *admin)).stdout)
    assert shown["quota"] == {"fragments": 100, "bytes": 5000000}
    token_file = tmp_path / "alice-token"
    created = ok(carma("namespaces", "token", "create", "alice", "--scope", "write", "--out", str(token_file), *admin))
    secret = token_file.read_text().strip()
    assert secret and secret not in created.stdout and secret not in created.stderr
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert json.loads(created.stdout)["token_file"] == str(token_file)

    errlog = tmp_path / "mcp-stderr"
    with open(errlog, "w") as log:
        async with mcp_session(server.url, "--namespace", "alice", "--token-file", str(token_file), "--log-level", "trace", errlog=log) as session:
            stored = await session.call_tool("remember", {"id": "t-1", "content": "alice's note"})
            assert not stored.is_error, text_of(stored)
            assert (await session.call_tool("get", {"id": "t-1"})).structured_content["content"] == "alice's note"
        # The same token on another namespace: as if it did not exist (404), nothing written.
        async with mcp_session(server.url, "--namespace", "bob", "--token-file", str(token_file), "--log-level", "trace", errlog=log) as session:
            refused = await session.call_tool("remember", {"id": "t-1", "content": "not bob's"})
            assert refused.is_error and refused.structured_content["status"] == 404, text_of(refused)
        # Through the environment, as hosts configure it.
        async with mcp_session(server.url, "--log-level", "trace", errlog=log, env={"CARMA_NAMESPACE": "alice", "CARMA_TOKEN": secret}) as session:
            assert (await session.call_tool("get", {"id": "t-1"})).structured_content["content"] == "alice's note"
    logged = errlog.read_text()
    assert secret not in logged and "admin-s3cret" not in logged

    # Revoked: refused at once.
    tokens = json.loads(ok(carma("namespaces", "token", "list", "alice", *admin)).stdout)["tokens"]
    assert len(tokens) == 1 and "token" not in tokens[0]
    ok(carma("namespaces", "token", "revoke", "alice", tokens[0]["id"], *admin))
    done = carma("put", "t-2", "--content", "x", "--namespace", "alice", "--server", server.url, "--token-file", str(token_file))
    assert done.returncode == 1 and secret not in done.stdout + done.stderr


def test_export_and_import_per_namespace(carmad: Carmad, tmp_path: Path) -> None:
    alice, bob = fresh("alice"), fresh("bob")
    server = ["--server", carmad.url]
    for number in range(1, 4):
        ok(carma("put", f"ex-{number}", "--content", f"alice's fragment {number}", "--tag", "ex", "--namespace", alice, *server))
    out = tmp_path / "alice.ndjson"
    exported = ok(carma("export", "--namespace", alice, "--out", str(out), *server))
    assert f"exported 3 fragments of namespace {alice}" in exported.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    fragments = [line for line in lines if "carma_export" not in line]
    assert sorted(line["id"] for line in fragments) == ["ex-1", "ex-2", "ex-3"]
    assert all(line.get("namespace") == alice for line in fragments)

    # The route decides: alice's export imported into bob is a copy in bob.
    imported = ok(carma("import", "--namespace", bob, str(out), *server))
    assert "imported 3" in imported.stdout
    again = ok(carma("import", "--namespace", bob, str(out), *server))
    assert "imported 0, unchanged 3" in again.stdout
    printed = ok(carma("get", "ex-2", "--namespace", bob, *server)).stdout
    got = json.loads(printed[printed.index("{"):])  # after the X-Fragment-Status and ETag lines
    assert got["content"] == "alice's fragment 2" and got["id"] == "ex-2" and got.get("namespace") == bob
    assert carma("get", "ex-2", *server).returncode == 1, "nothing was written to the default namespace"

    listed = json.loads(ok(carma("list", "--namespace", bob, *server)).stdout)
    assert sorted(item["id"] for item in listed["items"]) == ["ex-1", "ex-2", "ex-3"]
    found = json.loads(ok(carma("query", "alice's fragment", "--namespace", bob, *server)).stdout)
    assert found["results"] and {hit["id"] for hit in found["results"]} <= {"ex-1", "ex-2", "ex-3"}

    names = {entry["name"]: entry for entry in json.loads(ok(carma("namespaces", "list", "--all", *server)).stdout)["namespaces"]}
    assert {alice, bob, "default"} <= set(names) and names[bob]["fragments"] == 3
    deleted = json.loads(ok(carma("namespaces", "delete", bob, "--yes", *server)).stdout)
    assert deleted["deleted"] == 3
    assert carma("namespaces", "show", bob, *server).returncode == 1
    assert carma("get", "ex-2", "--namespace", alice, *server).returncode == 0
