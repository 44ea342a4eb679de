"""Python client for carmad, the CARMA self-healing memory-fragment store.

    from carma_client import CarmaClient, Fragment, BlankStub

    with CarmaClient("http://127.0.0.1:8080") as carma:
        carma.put_fragment("note-1", "The build server moved to rack 4.", links=["note-2"])
        result = carma.get_fragment("note-1")
        if isinstance(result, Fragment):   # a BlankStub is never a Fragment
            print(result.content)
        alice = carma.namespace("alice")   # the same calls on /namespaces/alice/...

``AsyncCarmaClient`` (asyncio, on httpx) has the same methods; it is imported on first use, so the
blocking client works on the standard library alone. Python 3.9 or newer.
"""

from typing import TYPE_CHECKING, Any

from ._http import NO_RETRIES, RetryPolicy
from ._values import DEFAULT_NAMESPACE
from .client import OPERATIONS, CarmaClient, NamespaceClient, Operation, format_condition
from .errors import (
    AuthDisabled,
    BatchTooLarge,
    CarmaError,
    Conflict,
    Forbidden,
    CycleNotFound,
    FragmentBlank,
    FragmentNotFound,
    IndexingTimeout,
    InsufficientStorage,
    InvalidRequest,
    LengthRequired,
    MethodNotAllowed,
    NamespaceNotFound,
    NotFound,
    NotReady,
    PayloadTooLarge,
    PreconditionFailed,
    QuotaExceeded,
    ReadOnlyStorage,
    RequestTooLarge,
    RetryLater,
    ServerError,
    ShuttingDown,
    TemporarilyUnavailable,
    StorageError,
    TransportError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from .models import (
    MAX_BATCH_ITEMS,
    BatchItem,
    BatchItemResult,
    BatchResult,
    BlankStub,
    Compaction,
    CycleEvent,
    CyclePhase,
    CycleReport,
    CycleSummary,
    DreamBudget,
    DreamStatus,
    Fragment,
    FragmentContext,
    FragmentHead,
    FragmentPage,
    FragmentSummary,
    Health,
    History,
    HistoryEvent,
    IndexInfo,
    Namespace,
    NamespaceDeleted,
    NamespacePage,
    NamespaceQuota,
    NamespaceToken,
    NeighbourRef,
    NotModified,
    PutResult,
    QueryHit,
    QueryResponse,
    PARTIAL,
    READY,
    Readiness,
    RebuildInfo,
    Reconstruction,
    RepairQueue,
    ScrubState,
    SimilarRef,
    TEXT_ONLY,
    Topology,
    TopologyEdge,
    TopologyNode,
)

__version__ = "0.2.0"

if TYPE_CHECKING:  # pragma: no cover - the type checker sees them; at run time __getattr__ imports them
    from .aio import AsyncCarmaClient, AsyncNamespaceClient, AsyncTransport

#: Names served from ``carma_client.aio``, which imports httpx.
_ASYNC_NAMES = ("AsyncCarmaClient", "AsyncNamespaceClient", "AsyncTransport")


def __getattr__(name: str) -> Any:
    if name in _ASYNC_NAMES:
        from . import aio

        return getattr(aio, name)
    raise AttributeError(f"module 'carma_client' has no attribute {name!r}")


__all__ = [
    "AsyncCarmaClient",
    "AsyncNamespaceClient",
    "AsyncTransport",
    "AuthDisabled",
    "BatchItem",
    "BatchItemResult",
    "BatchResult",
    "BatchTooLarge",
    "BlankStub",
    "CarmaClient",
    "CarmaError",
    "Compaction",
    "Conflict",
    "CycleEvent",
    "CycleNotFound",
    "CyclePhase",
    "CycleReport",
    "CycleSummary",
    "DEFAULT_NAMESPACE",
    "DreamBudget",
    "DreamStatus",
    "Forbidden",
    "Fragment",
    "FragmentBlank",
    "FragmentContext",
    "FragmentHead",
    "FragmentNotFound",
    "FragmentPage",
    "FragmentSummary",
    "Health",
    "History",
    "HistoryEvent",
    "IndexInfo",
    "IndexingTimeout",
    "InsufficientStorage",
    "InvalidRequest",
    "LengthRequired",
    "MAX_BATCH_ITEMS",
    "MethodNotAllowed",
    "NO_RETRIES",
    "Namespace",
    "NamespaceClient",
    "NamespaceDeleted",
    "NamespaceNotFound",
    "NamespacePage",
    "NamespaceQuota",
    "NamespaceToken",
    "NeighbourRef",
    "NotFound",
    "NotModified",
    "NotReady",
    "OPERATIONS",
    "Operation",
    "PARTIAL",
    "PayloadTooLarge",
    "PreconditionFailed",
    "PutResult",
    "QueryHit",
    "QueryResponse",
    "QuotaExceeded",
    "READY",
    "ReadOnlyStorage",
    "Readiness",
    "RebuildInfo",
    "Reconstruction",
    "RepairQueue",
    "RequestTooLarge",
    "RetryLater",
    "RetryPolicy",
    "ScrubState",
    "ServerError",
    "ShuttingDown",
    "SimilarRef",
    "StorageError",
    "TEXT_ONLY",
    "TemporarilyUnavailable",
    "Topology",
    "TopologyEdge",
    "TopologyNode",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "client",
    "errors",
    "format_condition",
    "models",
]
