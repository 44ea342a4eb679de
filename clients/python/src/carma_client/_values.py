"""Checks and encodings of what the caller passes in, shared by both clients and the models.

Everything here runs before a request is built, so a mistake (``tags="pref"``, an empty content,
a namespace name the server would refuse) fails at the call site with ``TypeError`` or
``ValueError`` and nothing is sent.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

#: An entity-tag condition: a version number, a tag (``"17"``, ``W/"17"``), ``*``, or several.
Condition = Union[int, str, Sequence[Union[int, str]]]

#: Namespace names follow the fragment-id rules: 1 to 200 of ``[A-Za-z0-9._~-]``, not starting with ``.``.
NAMESPACE_PATTERN = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,199}")

#: The namespace every route without the ``/namespaces/{ns}`` prefix uses.
DEFAULT_NAMESPACE = "default"


def format_condition(condition: Condition) -> str:
    """``If-Match`` / ``If-None-Match`` value: versions become quoted tags, lists are joined."""
    items: Iterable[Union[int, str]]
    if isinstance(condition, (int, str)):
        items = [condition]
    else:
        items = condition
    parts = []
    for item in items:
        if isinstance(item, bool):
            raise TypeError("a condition is a version, an entity tag or '*', not a bool")
        if isinstance(item, int):
            parts.append(f'"{item}"')
        else:
            parts.append(item)
    return ", ".join(parts)


def sequence(name: str, value: Any, example: str) -> List[Any]:
    """``value`` as a list, refusing what only looks like one: a ``str`` (or bytes) is iterable,
    but ``tags="pref"`` would otherwise be stored as ``['p', 'r', 'e', 'f']``."""
    if isinstance(value, (str, bytes, bytearray)):
        raise TypeError(f"{name} must be a list, not a {type(value).__name__}: write {name}=[{value!r}] "
                        f"(e.g. {name}={example})")
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list (e.g. {name}={example}), not {type(value).__name__}")
    return list(value)


def strings(name: str, value: Any, example: str) -> List[str]:
    items = sequence(name, value, example)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name} must be a list of strings (e.g. {name}={example}); got an item {item!r}")
    return items


def numbers(name: str, value: Any) -> List[float]:
    items = sequence(name, value, "[0.12, -0.5, 0.33]")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise TypeError(f"{name} must be a list of numbers; got an item {item!r}")
    return [float(x) for x in items]


def rfc3339(moment: Union[datetime, str]) -> str:
    """An aware ``datetime`` in RFC 3339 (UTC, milliseconds); a string is sent as given."""
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware (e.g. datetime.now(timezone.utc))")
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def fragment_body(
    what: str,
    content: Any,
    *,
    links: Optional[Sequence[str]] = None,
    tags: Optional[Sequence[str]] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    embedding: Optional[Sequence[float]] = None,
    ttl: Optional[int] = None,
    expires_at: Optional[Union[datetime, str]] = None,
) -> Dict[str, Any]:
    """The JSON body of a fragment write (``PUT /fragments/{id}`` and each batch item).

    ``what`` names the fragment in error messages (its id, or the batch item's position).
    """
    if not isinstance(content, str):
        raise TypeError(f"content must be a str, not {type(content).__name__}")
    if content == "":
        raise ValueError(f"content of {what} is empty: a fragment needs some text (delete_fragment removes one)")
    if ttl is not None and expires_at is not None:
        raise ValueError("give ttl or expires_at, not both")
    body: Dict[str, Any] = {"content": content}
    if links is not None:
        body["links"] = strings("links", links, "['note-2']")
    if tags is not None:
        body["tags"] = strings("tags", tags, "['pref']")
    if metadata is not None:
        body["metadata"] = dict(metadata)
    if embedding is not None:
        body["embedding"] = numbers("embedding", embedding)
    if ttl is not None:
        body["ttl"] = int(ttl)
    if expires_at is not None:
        body["expires_at"] = rfc3339(expires_at)
    return body


def check_namespace(name: Any) -> str:
    """``name`` if it is a valid namespace name, else ``TypeError`` / ``ValueError`` (nothing sent).

    The rules are the fragment-id rules, so a name never needs encoding in a path.
    """
    if not isinstance(name, str):
        raise TypeError(f"a namespace name is a str, not {type(name).__name__}")
    if not NAMESPACE_PATTERN.fullmatch(name):
        if name == "":
            problem = "is empty"
        elif len(name) > 200:
            problem = f"is {len(name)} characters long (at most 200)"
        elif name.startswith("."):
            problem = "starts with '.'"
        else:
            problem = "has characters other than A-Z, a-z, 0-9, '.', '_', '~' and '-'"
        raise ValueError(f"invalid namespace name {name!r}: it {problem}")
    return name
