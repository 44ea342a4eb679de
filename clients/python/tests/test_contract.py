"""The client covers openapi.yaml: every (path, method) operation has a registered client method."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Set, Tuple

import pytest

from carma_client import OPERATIONS, CarmaClient

from conftest import REPO_ROOT

yaml = pytest.importorskip("yaml")

HTTP_METHODS = {"get", "put", "post", "delete", "head", "patch", "options", "trace"}


# Operations for browsers, not for API clients: the web console's page and files (tag `console`).
BROWSER_TAGS = {"console"}


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


def test_no_client_method_claims_an_operation_the_spec_lacks() -> None:
    extra = sorted(set(OPERATIONS) - set(spec_operations()))
    assert not extra, f"client methods for operations not in openapi.yaml: {extra}"


def test_every_spec_path_and_method_is_covered() -> None:
    covered: Set[Tuple[str, str]] = {(op.method, op.path) for ops in OPERATIONS.values() for op in ops}
    assert set(spec_operations().values()) <= covered


def test_problem_types_in_the_spec_all_map_to_a_class() -> None:
    from carma_client.errors import _BY_SLUG, PROBLEM_PREFIX

    spec = yaml.safe_load(Path(REPO_ROOT, "openapi.yaml").read_text(encoding="utf-8"))
    types = spec["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
    slugs = {t[len(PROBLEM_PREFIX):] for t in types}
    assert slugs <= set(_BY_SLUG), sorted(slugs - set(_BY_SLUG))
