# schemathesis hooks for the carmad contract test (run.sh loads them through schemathesis.toml).
#
# They adapt the tester to rules of the API that OpenAPI cannot express, keep it from wrecking the
# seeded data the other operations need, and add one check; nothing else. Each rewrite keeps a
# generated request what it was meant to be (valid, or invalid in the one place schemathesis
# chose). They never touch responses and never skip a check, so a server bug cannot hide behind
# them.
#
# Every fragment route exists twice, in namespace `default` (`/fragments/...`) and under
# `/namespaces/{ns}/...`; the rules apply to both.
#
# Rules handled:
#  1. PUT of a fragment: the body's optional `id` must equal the path's id, and its optional
#     `namespace` must name the route's namespace (`default` without the prefix); cross-field
#     rules (the schema can only say that each is a valid name).
#  2. PUT of a fragment, batch items and POST query: every embedding must have the store's
#     dimension, which the first embedding stored fixes for good (server state, not schema).
#     seed.sh stores a 3-number embedding first, so the dimension is 3
#     (CARMA_CONTRACT_EMBEDDING_DIM overrides it).
#  3. PUT of a fragment and batch items: `ttl` and `expires_at` exclude each other, and
#     `expires_at` must lie in the future (a rule over two fields and the server's clock). In a
#     positive case a non-null `expires_at` becomes a fixed instant far ahead (still a date-time),
#     and is dropped (null) when a `ttl` is given too. A negative case is left alone.
#  4. POST import takes NDJSON (`application/x-ndjson`), which schemathesis has no serializer for
#     (see `ndjson` below).
#  5. Namespace names. A generated name is almost never one that exists, so every read under
#     /namespaces/{ns} would be a 404. A valid generated `{ns}` is mapped, by a hash of the name
#     (the same name always maps to the same one, and the seeded names map to themselves), to the
#     seeded namespace `team` (half of the names), to `default` (a quarter) or left as it is (a
#     quarter: unknown namespaces, and the namespaces writes create, stay covered). An invalid name
#     (the mutation of a negative case) is left alone.
#  6. The seeded namespaces are kept usable. A quota set on `default` or `team` by PUT
#     /namespaces/{ns} (the fuzzer sends `{"quota": {"fragments": 0}}` soon enough) would make
#     every later write there `403 quota-exceeded`: those requests go to namespace `sandbox`
#     instead. DELETE /namespaces/team would take the seeded namespace away from every operation
#     after it: it deletes `doomed` instead (seed.sh stores a fragment there, so the first such
#     delete answers 200 with something deleted).
#  7. POST query: `mode` `text` needs `text`, and `mode` `vector` needs an `embedding` unless the
#     server has an embedding model (the contract server has none): a rule over two fields and
#     the server's configuration. In a positive case such a query gets the missing member (`text`
#     "alpha", or an embedding of the store's dimension), which is valid with or without a model.
#     A negative case is left alone.
#
# Check added:
#  batch_refuses_invalid_items: a batch answers 200 when only items are invalid, each refused in
#     its own result. schemathesis.toml therefore lets negative_data_rejection accept 200 on the
#     batch operations, and this check demands, for a negative case answered 200, that at least
#     one item failed: invalid data still has to be refused, only one level down.
import json
import os
import re
import zlib

import schemathesis

# FragmentId and NamespaceName in openapi.yaml (the same rules).
NAME = re.compile(r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,199}$")
# The store's embedding dimension, as seed.sh fixes it.
DIMENSION = int(os.environ.get("CARMA_CONTRACT_EMBEDDING_DIM", "3"))
# An expiry every run is before.
FAR_FUTURE = "2999-12-31T23:59:59Z"
# Embedding in openapi.yaml: 1 to 4096 numbers, each finite as a 32-bit float.
FLOAT_LIMIT = 3.4028235677973366e38
# seed.sh's namespaces: `team` holds fragments (and a blank), `doomed` is there to be deleted.
SEEDED = ("default", "team")
MAPPED = ("team", "team", "default", None)  # by crc32 of the name; None keeps the name
QUOTA_SANDBOX = "sandbox"
DELETE_INSTEAD = {"team": "doomed"}

NAMESPACED = "/namespaces/{ns}"
# The batch operations (POST /fragments, POST /namespaces/{ns}/fragments).
BATCH_PATHS = ("/fragments", NAMESPACED + "/fragments")


def _is_positive(case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


def _is_negative(case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_negative


def _valid_embedding(value) -> bool:
    """Whether `value` satisfies the Embedding schema (so resizing it keeps it valid)."""
    return (
        isinstance(value, list)
        and 1 <= len(value) <= 4096
        and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and -FLOAT_LIMIT < x < FLOAT_LIMIT
            for x in value
        )
    )


def _mapped_namespace(name: str) -> str:
    """Rule 5: a valid generated namespace name, mapped to a seeded one or kept."""
    if name in SEEDED:
        return name
    return MAPPED[zlib.crc32(name.encode("utf-8")) % len(MAPPED)] or name


def _align_fragment(body: dict, positive: bool, path_id, namespace: str) -> None:
    """Rules 1 to 3 for one fragment body (`path_id` None: a batch item, whose id is free)."""
    # Rule 1. In a positive case the body's id and namespace always follow the route. (The
    # coverage phase sometimes puts a pattern-violating value into the body of a case it calls
    # positive; aligning it too keeps the case valid.) In a negative case only a *valid* value is
    # aligned: then the mismatch is not what makes the request invalid, and the server must reject
    # the request for the mutation schemathesis made (an invalid value is that mutation and is left
    # alone).
    body_id = body.get("id")
    if path_id is not None and isinstance(body_id, str) and isinstance(path_id, str) and (positive or NAME.match(body_id)):
        body["id"] = path_id
    body_namespace = body.get("namespace")
    if isinstance(body_namespace, str) and (positive or NAME.match(body_namespace)):
        body["namespace"] = namespace

    # Rule 2. A schema-valid embedding is cut or zero-padded to the store's dimension; it stays
    # schema-valid. An invalid embedding (the mutation of a negative case) is left alone.
    embedding = body.get("embedding")
    if _valid_embedding(embedding):
        body["embedding"] = (list(embedding) + [0.0] * DIMENSION)[:DIMENSION]

    # Rule 3. Expiry: one of the two, and in the future.
    if positive and body.get("expires_at") is not None:
        body["expires_at"] = None if body.get("ttl") is not None else FAR_FUTURE


@schemathesis.hook
def before_call(context, case, kwargs):
    method, path = case.operation.method.upper(), case.operation.path
    positive = _is_positive(case)
    parameters = case.path_parameters or {}

    # Rules 5 and 6: the namespace in the path.
    namespace = "default"
    if path.startswith(NAMESPACED):
        raw = parameters.get("ns")
        if isinstance(raw, str) and NAME.match(raw):
            if path == NAMESPACED and method == "PUT":
                if raw in SEEDED and isinstance(case.body, dict) and "quota" in case.body:
                    parameters["ns"] = QUOTA_SANDBOX
            elif path == NAMESPACED and method == "DELETE":
                parameters["ns"] = DELETE_INSTEAD.get(raw, raw)
            else:
                parameters["ns"] = _mapped_namespace(raw)
        namespace = parameters.get("ns")
        route = path[len(NAMESPACED):]
    else:
        route = path

    body = case.body
    if not isinstance(body, dict):
        return
    if method == "PUT" and route == "/fragments/{id}":
        _align_fragment(body, positive, parameters.get("id"), namespace)
    elif method == "POST" and route == "/fragments":
        items = body.get("fragments")
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    _align_fragment(item, positive, None, namespace)
    elif method == "POST" and route == "/query":
        embedding = body.get("embedding")
        if _valid_embedding(embedding):
            body["embedding"] = (list(embedding) + [0.0] * DIMENSION)[:DIMENSION]
        # Rule 7.
        if positive and body.get("mode") == "text" and body.get("text") is None:
            body["text"] = "alpha"
        if positive and body.get("mode") == "vector" and body.get("embedding") is None:
            body["embedding"] = ([1.0] + [0.0] * DIMENSION)[:DIMENSION]


# 4. POST import takes NDJSON (`application/x-ndjson`), which schemathesis has no serializer for:
#    the spec describes the body as a string, sent here as its UTF-8 bytes, unchanged.
@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value).encode("utf-8")


@schemathesis.check
def batch_refuses_invalid_items(ctx, response, case):
    """A negative batch answered 200 must have refused an item in its results."""
    if case.operation.method.upper() != "POST" or case.operation.path not in BATCH_PATHS:
        return None
    if not _is_negative(case) or response.status_code != 200:
        return None
    try:
        failed = response.json().get("failed")
    except Exception:  # the body's shape is response_schema_conformance's to judge
        return None
    if not isinstance(failed, int) or failed < 1:
        raise AssertionError(
            "A batch with invalid data was answered 200 without refusing any item "
            f"(failed: {failed!r}); the invalid item should have a result with its problem"
        )
    return None
