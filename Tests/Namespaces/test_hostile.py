"""Namespaces against a hostile tenant: with namespace A's read and write tokens, every route of
namespace B is tried, and nothing of B may come back, change, or be revealed to exist. Real carmad,
real port, real bytes on disk."""

from __future__ import annotations

import json
from typing import Dict, List, Optional, Tuple

import httpx
import pytest

from conftest import ADMIN

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
NDJSON = {"Content-Type": "application/x-ndjson"}

# B's notes: words no note of A has, so any of them in an answer to A is a leak.
B_NOTES = {
    "b1": "Bartholomew keeps the zeppelin hangar keys under the marmalade jar.",
    "b2": "Bartholomew's quokka is named Persimmon and eats zucchini on Thursdays.",
}
A_NOTES = {
    "a1": "Ada prefers green tea in the morning and hikes on weekends.",
    "a2": "Ada's sister lives in Porto and works as an architect.",
}
B_WORDS = ["bartholomew", "zeppelin", "marmalade", "quokka", "persimmon", "zucchini"]


def admin(server_url: str) -> httpx.Client:
    return httpx.Client(base_url=server_url, headers=ADMIN_HEADERS, timeout=30)


def put(client: httpx.Client, namespace: str, fragment_id: str, content: str, **fields: object) -> httpx.Response:
    response = client.put(f"/namespaces/{namespace}/fragments/{fragment_id}", json={"content": content, **fields})
    assert response.status_code in (200, 201), response.text
    return response


def token(client: httpx.Client, namespace: str, scope: str) -> Tuple[str, str]:
    response = client.post(f"/namespaces/{namespace}/tokens", json={"scope": scope})
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["token"]


def export_lines(client: httpx.Client, namespace: str) -> List[dict]:
    response = client.get(f"/namespaces/{namespace}/export")
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines() if line and "carma_export" not in line]


def b_requests(b_token_id: str) -> List[Tuple[str, str, Optional[dict], Optional[bytes], Dict[str, str]]]:
    """Every route of B, as (method, path, json body, raw body, headers)."""
    line = json.dumps({"id": "b1", "version": 1, "content": "overwritten", "created_at": "2026-01-01T00:00:00.000Z",
                       "updated_at": "2026-01-01T00:00:00.000Z", "namespace": "B"}).encode() + b"\n"
    return [
        ("GET", "/namespaces/B/fragments/b1", None, None, {}),
        ("HEAD", "/namespaces/B/fragments/b1", None, None, {}),
        ("PUT", "/namespaces/B/fragments/b1", {"content": "overwritten by A"}, None, {}),
        ("PUT", "/namespaces/B/fragments/new", {"content": "planted by A"}, None, {}),
        ("DELETE", "/namespaces/B/fragments/b1", None, None, {}),
        ("GET", "/namespaces/B/fragments", None, None, {}),
        ("POST", "/namespaces/B/fragments", {"fragments": [{"id": "b1", "content": "batch overwrite"}]}, None, {}),
        ("POST", "/namespaces/B/query", {"text": "Bartholomew zeppelin marmalade"}, None, {}),
        ("GET", "/namespaces/B/fragments/b1/context", None, None, {}),
        ("GET", "/namespaces/B/fragments/b1/history", None, None, {}),
        ("GET", "/namespaces/B/topology", None, None, {}),
        ("GET", "/namespaces/B/topology?around=b1", None, None, {}),
        ("GET", "/namespaces/B/export", None, None, {}),
        ("POST", "/namespaces/B/import", None, line, NDJSON),
        ("GET", "/namespaces/B", None, None, {}),
        ("PUT", "/namespaces/B", {"quota": {"fragments": 0}}, None, {}),
        ("DELETE", "/namespaces/B", None, None, {}),
        ("POST", "/namespaces/B/tokens", {"scope": "write"}, None, {}),
        ("GET", "/namespaces/B/tokens", None, None, {}),
        ("DELETE", f"/namespaces/B/tokens/{b_token_id}", None, None, {}),
    ]


def send(client: httpx.Client, method: str, path: str, body: Optional[dict], raw: Optional[bytes], headers: Dict[str, str]) -> httpx.Response:
    if raw is not None:
        return client.request(method, path, content=raw, headers=headers)
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("protect_reads", [False, True])
def test_a_tokens_reach_nothing_of_b(start_carmad, protect_reads: bool) -> None:
    server = start_carmad(*(["--protect-reads"] if protect_reads else []))
    root = admin(server.url)
    for fragment_id, content in A_NOTES.items():
        put(root, "A", fragment_id, content, links=["a2"] if fragment_id == "a1" else [])
    for fragment_id, content in B_NOTES.items():
        put(root, "B", fragment_id, content, links=["b2"] if fragment_id == "b1" else [])
    b_token_id, _ = token(root, "B", "write")
    _, a_read = token(root, "A", "read")
    _, a_write = token(root, "A", "write")
    b_before = export_lines(root, "B")
    b_tokens_before = root.get("/namespaces/B/tokens").json()

    for a_token in (a_read, a_write):
        tenant = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {a_token}"}, timeout=30)
        for method, path, body, raw, headers in b_requests(b_token_id):
            answer = send(tenant, method, path, body, raw, headers)
            # The same request on a namespace that does not exist: the answers must be identical.
            unknown = send(tenant, method, path.replace("/namespaces/B", "/namespaces/Nowhere"), body, raw, headers)
            # Fragment routes and B's own resource answer 404; the admin's routes 403: the same for
            # B as for a namespace that does not exist, byte for byte.
            expected = 403 if method != "GET" and path.rstrip("/").count("/") == 2 or "/tokens" in path else 404
            assert answer.status_code == unknown.status_code == expected, (method, path, answer.status_code, answer.text)
            assert answer.content == unknown.content, (method, path)
            assert "Bartholomew" not in answer.text and "b1" not in answer.text
        # Global routes: the admin's only.
        assert tenant.get("/namespaces").status_code == 403
        assert tenant.post("/dream", json={}).status_code == 403
        # Inside A, nothing of B: B's exact words find nothing, listings and exports hold A only.
        query = tenant.post("/namespaces/A/query", json={"text": "Bartholomew zeppelin marmalade quokka", "k": 10})
        assert query.status_code == 200 and query.json()["results"] == []
        assert query.json()["index"]["fragments"] == len(A_NOTES)
        listing = tenant.get("/namespaces/A/fragments").json()
        assert sorted(item["id"] for item in listing["items"]) == sorted(A_NOTES)
        exported = tenant.get("/namespaces/A/export").text.lower()
        assert not any(word in exported for word in B_WORDS)
        context = tenant.get("/namespaces/A/fragments/a1/context").json()
        assert all(entry["id"] in A_NOTES for entry in context["links"] + context["backlinks"] + context["similar"])
        topology = tenant.get("/namespaces/A/topology").json()
        assert sorted(node["id"] for node in topology["nodes"]) == sorted(A_NOTES)
        # A's own namespace, seen by its token, is A's.
        assert tenant.get("/namespaces/A").json()["fragments"] == len(A_NOTES)

    # The write token's import naming B lands in A (the route decides), never in B.
    writer = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {a_write}"}, timeout=30)
    line = json.dumps({"id": "imported", "namespace": "B", "version": 7, "content": "a line that names B",
                       "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z"})
    answer = writer.post("/namespaces/A/import", content=line.encode() + b"\n", headers=NDJSON)
    assert answer.status_code == 200, answer.text
    assert writer.get("/namespaces/A/fragments/imported").json()["namespace"] == "A"
    # A link naming B's key is refused, not followed.
    assert writer.put("/namespaces/A/fragments/a3", json={"content": "x", "links": ["B/b1"]}).status_code == 400
    assert writer.post("/namespaces/A/fragments", json={"fragments": [{"id": "B/b1", "content": "x"}]}).json()["failed"] == 1

    # B is exactly as it was, tokens included.
    assert export_lines(root, "B") == b_before
    assert root.get("/namespaces/B/tokens").json() == b_tokens_before
    assert root.get("/namespaces/B/fragments/b1").json()["content"] == B_NOTES["b1"]


def test_without_a_token_and_with_a_bad_one(start_carmad) -> None:
    server = start_carmad("--protect-reads")
    root = admin(server.url)
    put(root, "B", "b1", B_NOTES["b1"])
    anonymous = httpx.Client(base_url=server.url, timeout=30)
    assert anonymous.get("/namespaces/B/fragments/b1").status_code == 401
    assert anonymous.put("/namespaces/B/fragments/b1", json={"content": "x"}).status_code == 401
    forged = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer carma_tokxxxxxxxxxxxxxxxx_guess"}, timeout=30)
    assert forged.get("/namespaces/B/fragments/b1").status_code == 401
    # A revoked token stops working at once.
    token_id, secret = token(root, "B", "read")
    reader = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert reader.get("/namespaces/B/fragments/b1").status_code == 200
    assert reader.put("/namespaces/B/fragments/b1", json={"content": "x"}).status_code == 403
    assert root.delete(f"/namespaces/B/tokens/{token_id}").status_code == 204
    assert reader.get("/namespaces/B/fragments/b1").status_code == 401
    # Secrets never reach the log.
    assert secret not in server.log and ADMIN not in server.log


def lose_everywhere(data_dir, key: str) -> None:
    """Zeroes every record of `key` in both logs (scripts/zero-records.py on each area)."""
    import subprocess
    import sys
    from conftest import REPO_ROOT
    for area in (data_dir, data_dir / "redundancy"):
        done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts/zero-records.py"), str(area), key],
                              capture_output=True, text=True, check=True)
        assert int(done.stdout.strip() or 0) > 0, (area, key)


LONG_A = ("The harbour office keeps the tide tables for the northern pier, and the night shift checks "
          "the moorings of every fishing boat twice before dawn. When the fog horn sounds, the keeper "
          "writes the time in the logbook and calls the coast guard if a boat is late. The spare keys of "
          "the lighthouse hang in the cabinet by the radio, next to the chart of the sandbanks. ")


def test_a_reconstruction_quotes_only_its_own_namespace(start_carmad) -> None:
    server = start_carmad("--cache-bytes", "0", admin=False)
    client = httpx.Client(base_url=server.url, timeout=60)
    # A holds the fragment to lose and two related notes; B holds near-identical texts, more of them.
    put(client, "A", "target", LONG_A + "The keeper of the harbour office is Ada.", links=["tides"])
    put(client, "A", "tides", LONG_A[:180] + " Ada keeps the tide tables current.")
    put(client, "A", "fog", "When the fog horn sounds, the keeper writes the time in the logbook and calls the coast guard.")
    for index in range(6):
        put(client, "B", f"copy{index}", LONG_A + f" The keeper of the harbour office is Bartholomew {index}.", links=["target"])
    lose_everywhere(server.data_dir, "A/target")
    blank = client.get("/namespaces/A/fragments/target")
    assert blank.json()["status"] == "blank"
    cycle = client.post("/dream", json={}).json()
    for _ in range(600):
        report = client.get(f"/dream/{cycle['id']}").json()
        if report["state"] != "running":
            break
        import time
        time.sleep(0.1)
    rebuilt = client.get("/namespaces/A/fragments/target").json()
    assert rebuilt["status"] == "reconstructed", rebuilt
    assert rebuilt["sources"], rebuilt
    assert set(rebuilt["sources"]) <= {"tides", "fog"}, rebuilt["sources"]
    assert "Bartholomew" not in rebuilt["content"]
    history = client.get("/namespaces/A/fragments/target/history").json()
    assert all(set(event.get("sources", [])) <= {"tides", "fog"} for event in history["events"])


def test_a_deleted_namespace_never_comes_back(store) -> None:
    store.start()
    client = admin(store.url)
    for fragment_id, content in A_NOTES.items():
        put(client, "gone", fragment_id, content)
    put(client, "kept", "k1", "A note that stays.")
    old_export = client.get("/namespaces/gone/export").content
    answer = client.delete("/namespaces/gone")
    assert answer.status_code == 200 and answer.json()["deleted"] == len(A_NOTES)
    assert client.get("/namespaces/gone/fragments/a1").status_code == 404
    store.kill9()

    store.start()
    client = admin(store.url)
    assert client.get("/namespaces/gone").status_code == 404
    assert client.get("/namespaces/gone/fragments/a1").status_code == 404
    assert client.get("/namespaces/kept/fragments/k1").status_code == 200
    names = [entry["name"] for entry in client.get("/namespaces").json()["namespaces"]]
    assert "gone" not in names and "kept" in names
    store.stop()

    store.reindex()
    store.start()
    client = admin(store.url)
    assert client.get("/namespaces/gone/fragments/a1").status_code == 404
    # An import of the export taken before the deletion: every line older than the deletion.
    answer = client.post("/namespaces/gone/import", content=old_export, headers=NDJSON)
    assert answer.status_code == 200, answer.text
    assert answer.json()["imported"] == 0 and answer.json()["superseded"] == len(A_NOTES)
    assert client.get("/namespaces/gone/fragments/a1").status_code == 404
    assert client.get("/namespaces/kept/fragments/k1").json()["content"] == "A note that stays."
    store.stop()


def test_quotas_and_batches(start_carmad) -> None:
    server = start_carmad()
    client = admin(server.url)
    created = client.put("/namespaces/small", json={"quota": {"fragments": 3, "bytes": 200}})
    assert created.status_code == 201
    batch = client.post("/namespaces/small/fragments", json={"fragments": [
        {"id": "one", "content": "first"}, {"content": "made id"}, {"id": "one", "content": "again"},
        {"id": "three", "content": "third"}, {"id": "four", "content": "over the quota"}]}).json()
    statuses = [result["status"] for result in batch["results"]]
    assert statuses == [201, 201, 400, 201, 403]
    assert batch["results"][4]["problem"]["type"].endswith("quota-exceeded")
    assert len(batch["results"][1]["id"]) == 26
    # A retry of the same items writes nothing new.
    again = client.post("/namespaces/small/fragments", json={"fragments": [{"id": "one", "content": "first"}]}).json()
    assert again["results"][0]["outcome"] == "unchanged"
    state = client.get("/namespaces/small").json()
    assert state["fragments"] == 3
    over = client.put("/namespaces/small/fragments/one", json={"content": "x" * 300})
    assert over.status_code == 403 and over.json()["usage"]["bytes"] > 200
    assert client.get("/namespaces/small/fragments/one").json()["content"] == "first"
    assert client.post("/namespaces/small/fragments", json={"fragments": []}).status_code == 400
    too_many = client.post("/namespaces/small/fragments", json={"fragments": [{"content": "x"}] * 1001})
    assert too_many.status_code == 413
