# schemathesis hooks for the carmad contract test (run.sh loads them through schemathesis.toml).
#
# They adapt the tester to rules of the API that OpenAPI cannot express, and nothing else: each
# one rewrites a generated request so that it stays what it was meant to be (valid, or invalid in
# the one place schemathesis chose). They never touch responses and never skip a check, so a
# server bug cannot hide behind them.
#
# Rules handled:
#  1. PUT /fragments/{id}: the body's optional `id` must equal the path's id (a cross-field rule;
#     the schema can only say that both are fragment ids).
#  2. PUT /fragments/{id} and POST /query: every embedding must have the store's dimension, which
#     the first embedding stored fixes for good (server state, not schema). seed.sh stores a
#     3-number embedding first, so the dimension is 3 (CARMA_CONTRACT_EMBEDDING_DIM overrides it).
#  3. PUT /fragments/{id}: `ttl` and `expires_at` exclude each other, and `expires_at` must lie in
#     the future (a rule over two fields and the server's clock). In a positive case a non-null
#     `expires_at` becomes a fixed instant far ahead (still a date-time), and is dropped (null) when
#     a `ttl` is given too. A negative case is left alone.
import os
import re

import schemathesis

# FragmentId in openapi.yaml.
FRAGMENT_ID = re.compile(r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,199}$")
# The store's embedding dimension, as seed.sh fixes it.
DIMENSION = int(os.environ.get("CARMA_CONTRACT_EMBEDDING_DIM", "3"))
# An expiry every run is before.
FAR_FUTURE = "2999-12-31T23:59:59Z"
# Embedding in openapi.yaml: 1 to 4096 numbers, each finite as a 32-bit float.
FLOAT_LIMIT = 3.4028235677973366e38


def _is_positive(case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


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


@schemathesis.hook
def before_call(context, case, kwargs):
    operation = (case.operation.method.upper(), case.operation.path)
    body = case.body
    if not isinstance(body, dict):
        return
    positive = _is_positive(case)

    # Rule 1. In a positive case the body id is always aligned with the path. (The coverage phase
    # sometimes puts a pattern-violating id into the body of a case it calls positive; aligning it
    # too keeps the case valid.) In a negative case only a *valid* body id is aligned: then the
    # mismatch is not what makes the request invalid, and the server must reject the request for
    # the mutation schemathesis made (an invalid body id is that mutation and is left alone).
    if operation == ("PUT", "/fragments/{id}"):
        path_id = (case.path_parameters or {}).get("id")
        body_id = body.get("id")
        if isinstance(body_id, str) and isinstance(path_id, str) and (positive or FRAGMENT_ID.match(body_id)):
            body["id"] = path_id

    # Rule 2. A schema-valid embedding is cut or zero-padded to the store's dimension; it stays
    # schema-valid. An invalid embedding (the mutation of a negative case) is left alone.
    if operation in (("PUT", "/fragments/{id}"), ("POST", "/query")):
        embedding = body.get("embedding")
        if _valid_embedding(embedding):
            body["embedding"] = (list(embedding) + [0.0] * DIMENSION)[:DIMENSION]

    # Rule 3. Expiry: one of the two, and in the future.
    if operation == ("PUT", "/fragments/{id}") and positive and body.get("expires_at") is not None:
        body["expires_at"] = None if body.get("ttl") is not None else FAR_FUTURE


# 4. POST /import takes NDJSON (`application/x-ndjson`), which schemathesis has no serializer for:
#    the spec describes the body as a string, sent here as its UTF-8 bytes, unchanged.
@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    import json

    return json.dumps(value).encode("utf-8")
