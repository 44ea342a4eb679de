"""Exceptions raised by the client.

carmad answers every error as an RFC 9457 problem document whose ``type`` is a stable
``urn:carma:problem:<slug>``. The client turns each into an exception class chosen by that type
first (the most precise signal) and by the HTTP status second, so callers can catch what they
mean (``except PreconditionFailed``) instead of comparing status codes, and new server slugs
still land in the right family.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Type

if TYPE_CHECKING:  # pragma: no cover - imports for type checkers only
    from .models import BatchResult, BlankStub

PROBLEM_PREFIX = "urn:carma:problem:"


class CarmaError(Exception):
    """Base of every error this client raises.

    ``type``, ``status``, ``title`` and ``detail`` mirror the problem document (RFC 9457).
    Errors that never reached the server (connection refused, timeouts) have ``status`` None.
    ``problem`` keeps the whole document, so extension members (``field``, ``current_version``,
    ``max_body_bytes``) stay reachable even when this client does not know them yet.
    """

    def __init__(
        self,
        type: str = "about:blank",
        status: Optional[int] = None,
        title: str = "",
        detail: Optional[str] = None,
        problem: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        self.type = type
        self.status = status
        self.title = title
        self.detail = detail
        self.problem: Dict[str, Any] = dict(problem or {})
        self.headers: Dict[str, str] = dict(headers or {})
        self.retry_after = retry_after
        super().__init__(self._message())

    #: Set on an error raised by ``put_fragments`` after some of its requests (chunks of at most
    #: 1000 items) were answered: their results, which the server did write. None otherwise.
    partial_batch: Optional["BatchResult"] = None

    def _message(self) -> str:
        head = f"{self.status} {self.title}".strip() if self.status is not None else self.title
        slug = self.slug
        parts = [head or self.__class__.__name__]
        if slug:
            parts.append(f"[{slug}]")
        if self.detail:
            parts.append(f"- {self.detail}")
        return " ".join(parts)

    @property
    def slug(self) -> Optional[str]:
        """The ``<slug>`` of ``urn:carma:problem:<slug>``, or None for other types."""
        if self.type.startswith(PROBLEM_PREFIX):
            return self.type[len(PROBLEM_PREFIX):]
        return None

    @property
    def field(self) -> Optional[str]:
        """The offending member or parameter, for ``invalid-*`` problems that name one."""
        value = self.problem.get("field")
        return value if isinstance(value, str) else None


class TransportError(CarmaError):
    """The request did not get an HTTP answer: connection refused or reset, a timeout, DNS."""

    def __init__(self, detail: str) -> None:
        super().__init__(type="about:blank", status=None, title="transport error", detail=detail)


class IndexingTimeout(CarmaError, TimeoutError):
    """``wait_until_indexed`` ran out of time: the text index or the embeddings were still
    catching up. ``readiness`` is the last answer of ``/readyz`` (None if none came)."""

    readiness = None

    def __init__(self, detail: str, readiness: object = None) -> None:
        super().__init__(type="about:blank", status=None, title="indexing not finished", detail=detail)
        self.readiness = readiness


class InvalidRequest(CarmaError):
    """400 family: the server rejected the request as malformed; nothing was changed."""


class LengthRequired(InvalidRequest):
    """411: no ``Content-Length`` (the client always sends one, so this means a proxy changed it)."""


class UnsupportedMediaType(InvalidRequest):
    """415: the body was not ``application/json`` in UTF-8."""


class RequestTooLarge(InvalidRequest):
    """414/431: the request line or head did not fit the server's per-connection memory."""


class PayloadTooLarge(InvalidRequest):
    """413: the body exceeds ``--max-body-bytes``; ``max_body_bytes`` gives the limit."""

    @property
    def max_body_bytes(self) -> Optional[int]:
        value = self.problem.get("max_body_bytes")
        return value if isinstance(value, int) else None


class BatchTooLarge(PayloadTooLarge):
    """413 ``batch-too-large``: more than 1000 items in one batch (``put_fragments`` splits
    larger lists itself, so this means a smaller server limit or a hand-made request)."""


class Conflict(InvalidRequest):
    """409: the request contradicts the server's state (``import-conflict``, ``auth-disabled``);
    nothing was changed. An ``InvalidRequest`` as 409s were before this class existed."""


class AuthDisabled(Conflict):
    """409 ``auth-disabled``: token routes need a server started with ``--auth-token-file``."""


class Unauthorized(CarmaError):
    """401: the server runs with ``--auth-token-file`` and the bearer token was missing or wrong."""


class Forbidden(CarmaError):
    """403 ``forbidden``: the token is valid but may not do this (a namespace token on a global
    route, a read token writing); ``QuotaExceeded`` is a 403 too."""


class QuotaExceeded(Forbidden):
    """403 ``quota-exceeded``: the write would take the namespace over its fragment or byte quota;
    nothing was written. ``quota`` and ``usage`` are the server's figures (``fragments``, ``bytes``)
    as it sends them (``usage`` may count the refused write: read the ``detail``)."""

    @property
    def quota(self) -> Dict[str, Optional[int]]:
        value = self.problem.get("quota")
        return dict(value) if isinstance(value, dict) else {}

    @property
    def usage(self) -> Dict[str, Optional[int]]:
        value = self.problem.get("usage")
        return dict(value) if isinstance(value, dict) else {}


class NotFound(CarmaError):
    """404: no such route, fragment, cycle or namespace."""


class FragmentNotFound(NotFound):
    """404 ``fragment-not-found``: the id was never stored or was deleted on purpose."""


class CycleNotFound(NotFound):
    """404 ``cycle-not-found``: no dream cycle has this id."""


class NamespaceNotFound(NotFound):
    """404 ``namespace-not-found``: the namespace does not exist, or the token is another
    namespace's (the server answers both alike, so a token cannot probe for names)."""


class MethodNotAllowed(CarmaError):
    """405: the path exists but not with this method (a client bug, never a documented call)."""


class PreconditionFailed(CarmaError):
    """412: ``If-Match`` / ``If-None-Match: *`` did not hold; someone else wrote first.

    ``current_version`` and ``etag`` say what the fragment is now (None when it does not exist),
    so the caller can re-read and decide instead of overwriting blindly.
    """

    @property
    def current_version(self) -> Optional[int]:
        value = self.problem.get("current_version")
        return value if isinstance(value, int) else None

    @property
    def etag(self) -> Optional[str]:
        return self.headers.get("etag")


class ServerError(CarmaError):
    """5xx not covered by a more precise class."""


class StorageError(ServerError):
    """500 ``storage-error``: an I/O failure of the payload files or the registry."""


class Unavailable(ServerError):
    """503: try again later; ``retry_after`` (seconds) says when, if the server said."""


#: The name the brief and many HTTP clients use for the same idea.
RetryLater = Unavailable


class NotReady(Unavailable):
    """503 ``not-ready``: the server is starting or stopping."""


class ReadOnlyStorage(Unavailable):
    """503 ``read-only-storage``: the data directory cannot be written; reads still work."""


class ShuttingDown(Unavailable):
    """503 ``shutting-down``: the store is closing."""


class TemporarilyUnavailable(Unavailable):
    """503 ``temporarily-unavailable``: a record could not be read just now (no free file
    descriptor, no memory); nothing is lost. Retried like any 503 with ``Retry-After``."""


class FragmentBlank(Unavailable):
    """503 for a strict read (``Prefer: strict``) of a blank fragment.

    Carries the ``BlankStub`` (what the registry still knows) so the caller need not ask again;
    ``retry_after`` is the server's estimate of when a dream cycle will have rebuilt it.
    """

    stub: Optional["BlankStub"] = None


class InsufficientStorage(ServerError):
    """507 ``insufficient-storage``: the disk is full; the previous version is intact."""


_BY_SLUG: Dict[str, Type[CarmaError]] = {
    "malformed-query": InvalidRequest,
    "malformed-path": InvalidRequest,
    "malformed-content-length": InvalidRequest,
    "empty-body": InvalidRequest,
    "invalid-id": InvalidRequest,
    "invalid-query": InvalidRequest,
    "malformed-json": InvalidRequest,
    "invalid-fragment": InvalidRequest,
    "invalid-budget": InvalidRequest,
    "invalid-cycle": InvalidRequest,
    "invalid-import": InvalidRequest,
    "invalid-namespace": InvalidRequest,
    "duplicate-id": InvalidRequest,
    "batch-too-large": BatchTooLarge,
    "import-conflict": Conflict,
    "auth-disabled": AuthDisabled,
    "forbidden": Forbidden,
    "quota-exceeded": QuotaExceeded,
    "namespace-not-found": NamespaceNotFound,
    "length-required": LengthRequired,
    "body-too-large": PayloadTooLarge,
    "json-too-complex": PayloadTooLarge,
    "unsupported-media-type": UnsupportedMediaType,
    "not-found": NotFound,
    "fragment-not-found": FragmentNotFound,
    "cycle-not-found": CycleNotFound,
    "method-not-allowed": MethodNotAllowed,
    "unauthorized": Unauthorized,
    "precondition-failed": PreconditionFailed,
    "internal": ServerError,
    "storage-error": StorageError,
    "not-ready": NotReady,
    "read-only-storage": ReadOnlyStorage,
    "shutting-down": ShuttingDown,
    "temporarily-unavailable": TemporarilyUnavailable,
    "insufficient-storage": InsufficientStorage,
}

_BY_STATUS: Dict[int, Type[CarmaError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    411: LengthRequired,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    414: RequestTooLarge,
    415: UnsupportedMediaType,
    431: RequestTooLarge,
    500: ServerError,
    503: Unavailable,
    507: InsufficientStorage,
}


def error_class(problem_type: Optional[str], status: int) -> Type[CarmaError]:
    """Picks the exception class: by problem ``type`` first, then by status, then by family."""
    if problem_type and problem_type.startswith(PROBLEM_PREFIX):
        cls = _BY_SLUG.get(problem_type[len(PROBLEM_PREFIX):])
        if cls is not None:
            return cls
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls
    if 400 <= status < 500:
        return InvalidRequest
    if status >= 500:
        return ServerError
    return CarmaError
