"""Python client for carmad, the CARMA self-healing memory-fragment store.

    from carma_client import CarmaClient, Fragment, BlankStub

    with CarmaClient("http://127.0.0.1:8080") as carma:
        carma.put_fragment("note-1", "The build server moved to rack 4.", links=["note-2"])
        result = carma.get_fragment("note-1")
        if isinstance(result, Fragment):   # a BlankStub is never a Fragment
            print(result.content)

Standard library only; Python 3.9 or newer.
"""

from ._http import NO_RETRIES, RetryPolicy
from .client import OPERATIONS, CarmaClient, Operation, format_condition
from .errors import (
    CarmaError,
    CycleNotFound,
    FragmentBlank,
    FragmentNotFound,
    IndexingTimeout,
    InsufficientStorage,
    InvalidRequest,
    LengthRequired,
    MethodNotAllowed,
    NotFound,
    NotReady,
    PayloadTooLarge,
    PreconditionFailed,
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

__version__ = "0.1.0"

__all__ = [name for name in dir() if not name.startswith("_")]
