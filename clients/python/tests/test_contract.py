"""The client covers openapi.yaml: every (path, method) operation has a registered client method."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Set, Tuple

import pytest

from carma_client import OPERATIONS, CarmaClient, NamespaceClient

from conftest import REPO_ROOT

yaml = pytest.importorskip("yaml")

HTTP_METHODS = {"get", "put", "post", "delete", "head", "patch", "options", "trace"}


# Operations for browsers, not for API clients: the web console's page and files (tag `console`).
BROWSER_TAGS = {"console"}

# The fragment routes of a namespace: `client.namespace(name)` (a NamespaceClient) performs them.
NAMESPACED_FRAGMENT_ROUTES = ("/namespaces/{ns}/fragments", "/namespaces/{ns}/query", "/namespaces/{ns}/export",
                              "/namespaces/{ns}/import", "/namespaces/{ns}/topology")


def spec_operations() -> Dict[str, Tuple[str, str]]:
    spec = yaml.safe_load(Path(REPO_ROOT, "openapi.yaml").read_text(encoding="utf-8"))
    found: Dict[str, Tuple[str, str]] = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS and not BROWSER_TAGS & set(op.get("tags", [])):
                found[op["operationId"]] = (method.upper(), path)
    return found


def test_every_spec_operation_has_a_client_method() -> None:
    spec = spec_operations()
    assert spec, "no operations read from openapi.yaml"
    missing = sorted(set(spec) - set(OPERATIONS))
    assert not missing, f"operations without a client method: {missing}"
    for operation_id, (method, path) in spec.items():
        for registered in OPERATIONS[operation_id]:
            assert (registered.method, registered.path) == (method, path), operation_id
            assert callable(getattr(CarmaClient, registered.python_name))
            if path.startswith(NAMESPACED_FRAGMENT_ROUTES):
                assert callable(getattr(NamespaceClient, registered.python_name)), operation_id


def test_every_fragment_route_has_its_namespaced_copy() -> None:
    """The routes of namespace `default` exist again under /namespaces/{ns}, served by the same
    client method (which NamespaceClient sends there)."""
    spec = spec_operations()
    by_route = {route: operation_id for operation_id, route in spec.items()}
    for operation_id, (method, path) in spec.items():
        if path.startswith(("/fragments", "/query", "/export", "/import", "/topology")):
            copy = by_route.get((method, "/namespaces/{ns}" + path))
            assert copy is not None, f"{operation_id} has no copy under /namespaces/{{ns}}"
            assert {op.python_name for op in OPERATIONS[copy]} == {op.python_name for op in OPERATIONS[operation_id]}


def test_no_client_method_claims_an_operation_the_spec_lacks() -> None:
    extra = sorted(set(OPERATIONS) - set(spec_operations()))
    assert not extra, f"client methods for operations not in openapi.yaml: {extra}"


def test_every_spec_path_and_method_is_covered() -> None:
    covered: Set[Tuple[str, str]] = {(op.method, op.path) for ops in OPERATIONS.values() for op in ops}
    assert set(spec_operations().values()) <= covered


# Problem types the client has no class of their own for: they are raised by their status's class
# (error_class falls back to it), which is the one named here.
BY_STATUS_ONLY = {"invalid-batch": 400, "invalid-token-request": 400, "token-not-found": 404}


def test_problem_types_in_the_spec_all_map_to_a_class() -> None:
    from carma_client.errors import _BY_SLUG, _BY_STATUS, PROBLEM_PREFIX, error_class

    spec = yaml.safe_load(Path(REPO_ROOT, "openapi.yaml").read_text(encoding="utf-8"))
    types = spec["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
    slugs = {t[len(PROBLEM_PREFIX):] for t in types}
    unmapped = slugs - set(_BY_SLUG)
    assert unmapped <= set(BY_STATUS_ONLY), sorted(unmapped - set(BY_STATUS_ONLY))
    for slug in unmapped:
        status = BY_STATUS_ONLY[slug]
        assert error_class(PROBLEM_PREFIX + slug, status) is _BY_STATUS[status], slug
