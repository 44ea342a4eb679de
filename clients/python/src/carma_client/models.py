"""Typed values for what carmad sends and accepts (the schemas of ``openapi.yaml``).

Parsing is deliberately tolerant of members this client does not know yet (they are kept in
``extra`` where the schema allows extensions, and ignored elsewhere), so an older client keeps
working against a newer server. It is strict about the one thing that matters most: a blank
fragment is a ``BlankStub``, a type with no ``content`` at all, never a ``Fragment``, so code that
reads ``fragment.content`` cannot be handed a placeholder by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ._values import DEFAULT_NAMESPACE, fragment_body
from .errors import CarmaError, error_class

#: ``ok``, ``blank`` or ``reconstructed`` (plus ``unknown`` in neighbour and topology lists).
FragmentStatus = str

OK = "ok"
BLANK = "blank"
RECONSTRUCTED = "reconstructed"
UNKNOWN = "unknown"


def parse_timestamp(value: Any) -> Optional[datetime]:
    """RFC 3339 UTC with milliseconds (``2026-11-29T23:40:00.123Z``) as an aware ``datetime``.

    ``datetime.fromisoformat`` only learned the ``Z`` suffix in Python 3.11, so it is replaced
    first; the package supports 3.9.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"timestamp must be a string, got {value!r}")
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def _ts(value: Any) -> datetime:
    moment = parse_timestamp(value)
    if moment is None:
        raise ValueError("timestamp is required")
    return moment


def _strs(value: Any) -> List[str]:
    return [str(item) for item in (value or [])]


def _text(data: Mapping[str, Any]) -> str:
    """A result's content as text: "" when absent, null or the result is blank."""
    content = data.get("content")
    return content if isinstance(content, str) and data.get("status") != BLANK else ""


def _counts(value: Any) -> Dict[str, int]:
    return {str(key): int(count) for key, count in (value or {}).items()}


def _namespace(data: Mapping[str, Any]) -> str:
    value = data.get("namespace")
    return value if isinstance(value, str) and value else DEFAULT_NAMESPACE


def _opt_int(value: Any) -> Optional[int]:
    return int(value) if value is not None else None


def version_from_etag(etag: Optional[str]) -> Optional[int]:
    """The version in an entity tag: ``"17"`` and ``W/"17"`` both give 17."""
    if not etag:
        return None
    tag = etag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    return int(tag) if tag.isdigit() else None


# -- fragments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reconstruction:
    """How a ``reconstructed`` fragment was rebuilt; its text is approximate, not the original."""

    confidence: float
    sources: List[str]
    method: str
    reconstructed_at: Optional[datetime]


@dataclass(frozen=True)
class Fragment:
    """A fragment with real content: ``ok`` (verified, byte-exact) or ``reconstructed``.

    For a reconstructed fragment ``reconstruction`` says how sure the server is and what the text
    was assembled from; check ``is_exact`` before treating ``content`` as the original words.
    ``etag`` is the response's entity tag (weak for a reconstructed fragment) when known.
    """

    id: str
    version: int
    content: str
    links: List[str]
    tags: List[str]
    metadata: Dict[str, Any]
    size: int
    created_at: datetime
    updated_at: datetime
    status: FragmentStatus
    checksum: str
    embedding: Optional[List[float]] = None
    reconstruction: Optional[Reconstruction] = None
    etag: Optional[str] = None
    #: When the fragment expires (``ttl`` or ``expires_at`` on its PUT); None for never.
    expires_at: Optional[datetime] = None
    #: The namespace it lives in (bodies of ``default`` carry no ``namespace`` member).
    namespace: str = DEFAULT_NAMESPACE

    @property
    def text(self) -> str:
        """The content (never None); the same name on every result type, "" for a blank."""
        return self.content

    @property
    def is_blank(self) -> bool:
        """Always False: a blank is a ``BlankStub``, never a ``Fragment``."""
        return False

    @property
    def is_exact(self) -> bool:
        """True for ``ok``: the content is the stored original, checksum verified."""
        return self.status == OK

    @property
    def is_reconstructed(self) -> bool:
        return self.status == RECONSTRUCTED

    @classmethod
    def from_json(cls, data: Mapping[str, Any], etag: Optional[str] = None) -> "Fragment":
        if data.get("status") == BLANK or "content" not in data:
            raise ValueError("a blank stub is not a Fragment; use BlankStub.from_json")
        reconstruction = None
        if data.get("status") == RECONSTRUCTED:
            reconstruction = Reconstruction(
                confidence=float(data.get("confidence", 0.0)),
                sources=_strs(data.get("sources")),
                method=str(data.get("method", "")),
                reconstructed_at=parse_timestamp(data.get("reconstructed_at")),
            )
        embedding = data.get("embedding")
        return cls(
            id=data["id"],
            version=int(data["version"]),
            content=data["content"],
            links=_strs(data.get("links")),
            tags=_strs(data.get("tags")),
            metadata=dict(data.get("metadata") or {}),
            size=int(data["size"]),
            created_at=_ts(data["created_at"]),
            updated_at=_ts(data["updated_at"]),
            status=data["status"],
            checksum=data["checksum"],
            embedding=[float(x) for x in embedding] if embedding is not None else None,
            reconstruction=reconstruction,
            etag=etag,
            expires_at=parse_timestamp(data.get("expires_at")),
            namespace=_namespace(data),
        )


@dataclass(frozen=True)
class RebuildInfo:
    """The state of a blank's repair, as honest as the server is: every member may be absent.

    ``state`` is ``queued`` or ``failed`` (None from servers that do not say); ``eta_seconds`` and
    ``next_attempt_at`` are None when no attempt is planned (or the server does not say), never a
    made-up 0. ``describe()`` words it for people.
    """

    queued_at: Optional[datetime] = None
    eta_seconds: Optional[int] = None
    state: Optional[str] = None
    attempts: Optional[int] = None
    last_error: Optional[str] = None
    next_attempt_at: Optional[datetime] = None

    @property
    def planned(self) -> bool:
        """True when the server named a time for the next attempt."""
        return self.eta_seconds is not None or self.next_attempt_at is not None

    def describe(self) -> str:
        """``rebuild expected in 30 s`` when an attempt is planned, else what is known: e.g.
        ``no retry planned (failed after 3 attempts: no source left)``."""
        if self.eta_seconds is not None:
            return f"rebuild expected in {self.eta_seconds} s"
        if self.next_attempt_at is not None:
            return "rebuild attempt planned at " + self.next_attempt_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        facts = []
        if self.state:
            facts.append(self.state)
        if self.attempts:
            facts.append(f"after {self.attempts} attempt{'s' if self.attempts != 1 else ''}")
        detail = " ".join(facts)
        if self.last_error:
            detail = f"{detail}: {self.last_error}" if detail else self.last_error
        return "no retry planned" + (f" ({detail})" if detail else "")

    @classmethod
    def from_json(cls, data: Optional[Mapping[str, Any]]) -> "RebuildInfo":
        data = data or {}
        eta = data.get("eta_seconds")
        attempts = data.get("attempts")
        last_error = data.get("last_error")
        return cls(
            queued_at=parse_timestamp(data.get("queued_at")),
            eta_seconds=int(eta) if eta is not None else None,
            state=data.get("state"),
            attempts=int(attempts) if attempts is not None else None,
            last_error=str(last_error) if last_error is not None else None,
            next_attempt_at=parse_timestamp(data.get("next_attempt_at")),
        )


@dataclass(frozen=True)
class BlankStub:
    """What a read of a **blank** fragment answers: the registry's knowledge, without content.

    Deliberately not a ``Fragment`` and without a ``content`` attribute: a placeholder must
    never flow into a pipeline as if it were the text. ``text`` is "" (with ``is_blank`` True),
    so code that joins texts over mixed results keeps working. ``retry_after`` is the server's
    ``Retry-After`` (seconds), None when no attempt is planned; ``rebuild`` says more.
    ``version`` is None for ``backend_unavailable`` (nothing known just now).
    """

    id: str
    version: Optional[int]
    links: List[str]
    tags: List[str]
    lost_at: Optional[datetime]
    reason: str
    detected_by: Optional[str]
    rebuild: RebuildInfo
    retry_after: Optional[float] = None
    status: FragmentStatus = BLANK
    rebuild_needed: bool = True
    namespace: str = DEFAULT_NAMESPACE

    @property
    def text(self) -> str:
        """Always "": a blank has no content (see ``is_blank``, ``rebuild_needed``)."""
        return ""

    @property
    def is_blank(self) -> bool:
        return True

    @classmethod
    def from_json(cls, data: Mapping[str, Any], retry_after: Optional[float] = None) -> "BlankStub":
        if data.get("status") != BLANK:
            raise ValueError(f"not a blank stub: status {data.get('status')!r}")
        return cls(
            id=data["id"],
            version=int(data["version"]) if data.get("version") is not None else None,
            links=_strs(data.get("links")),
            tags=_strs(data.get("tags")),
            lost_at=parse_timestamp(data.get("lost_at")),
            reason=str(data.get("reason", "")),
            detected_by=data.get("detected_by"),
            rebuild=RebuildInfo.from_json(data.get("rebuild")),
            retry_after=retry_after,
            rebuild_needed=bool(data.get("rebuild_needed", True)),
            namespace=_namespace(data),
        )


@dataclass(frozen=True)
class NotModified:
    """``304``: the caller's cached copy (named by ``If-None-Match``) is still current."""

    etag: Optional[str]

    @property
    def version(self) -> Optional[int]:
        return version_from_etag(self.etag)


#: What ``get_fragment`` returns; ``NotModified`` only when ``if_none_match`` was given.
ReadResult = Union[Fragment, BlankStub, NotModified]


@dataclass(frozen=True)
class FragmentHead:
    """The answer to ``HEAD /fragments/{id}``: status and validators without the body."""

    http_status: int
    status: Optional[FragmentStatus]
    etag: Optional[str]
    content_length: Optional[int]
    retry_after: Optional[float]

    @property
    def version(self) -> Optional[int]:
        return version_from_etag(self.etag)

    @property
    def is_blank(self) -> bool:
        return self.status == BLANK

    @property
    def not_modified(self) -> bool:
        return self.http_status == 304


@dataclass(frozen=True)
class PutResult:
    """A stored write: the fragment as a ``GET`` would return it, and whether it was new."""

    fragment: Fragment
    created: bool
    etag: Optional[str]
    location: Optional[str] = None

    @property
    def version(self) -> int:
        return self.fragment.version


# -- listing, history, context ---------------------------------------------------------------


@dataclass(frozen=True)
class FragmentSummary:
    """A fragment in a listing (no content); ``reason`` for a blank, ``confidence`` if reconstructed."""

    id: str
    version: int
    status: FragmentStatus
    size: int
    checksum: str
    links: List[str]
    tags: List[str]
    created_at: datetime
    updated_at: datetime
    reason: Optional[str] = None
    confidence: Optional[float] = None
    expires_at: Optional[datetime] = None

    @property
    def is_blank(self) -> bool:
        return self.status == BLANK

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FragmentSummary":
        return cls(
            id=data["id"],
            version=int(data["version"]),
            status=data["status"],
            size=int(data["size"]),
            checksum=data["checksum"],
            links=_strs(data.get("links")),
            tags=_strs(data.get("tags")),
            created_at=_ts(data["created_at"]),
            updated_at=_ts(data["updated_at"]),
            reason=data.get("reason"),
            confidence=float(data["confidence"]) if data.get("confidence") is not None else None,
            expires_at=parse_timestamp(data.get("expires_at")),
        )


@dataclass(frozen=True)
class FragmentPage:
    """One page of a listing; pass ``next_cursor`` as ``cursor`` for the next (None: last page)."""

    items: List[FragmentSummary]
    next_cursor: Optional[str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FragmentPage":
        return cls(items=[FragmentSummary.from_json(item) for item in data.get("items", [])],
                   next_cursor=data.get("next_cursor"))


_HISTORY_FIELDS = ("version", "size", "reason", "detected_by", "priority", "tier", "source", "duration_ms",
                   "was", "cycle", "confidence", "sources", "method", "attempt", "next_try_at", "status")


@dataclass(frozen=True)
class HistoryEvent:
    """One thing that happened to a fragment; which members are set depends on ``kind``.

    ``kind`` is ``created``, ``updated``, ``lost``, ``queued``, ``recovered``, ``reconstructed``,
    ``repair_failed``, ``redundancy_repaired`` or ``reindexed``. Members this client does not
    know are kept in ``extra`` (the schema allows additions).
    """

    at: datetime
    kind: str
    version: Optional[int] = None
    size: Optional[int] = None
    reason: Optional[str] = None
    detected_by: Optional[str] = None
    priority: Optional[str] = None
    tier: Optional[str] = None
    source: Optional[str] = None
    duration_ms: Optional[float] = None
    was: Optional[str] = None
    cycle: Optional[int] = None
    confidence: Optional[float] = None
    sources: Optional[List[str]] = None
    method: Optional[str] = None
    attempt: Optional[int] = None
    next_try_at: Optional[datetime] = None
    status: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "HistoryEvent":
        known: Dict[str, Any] = {name: data.get(name) for name in _HISTORY_FIELDS}
        known["next_try_at"] = parse_timestamp(known["next_try_at"])
        if known["sources"] is not None:
            known["sources"] = _strs(known["sources"])
        extra = {k: v for k, v in data.items() if k not in _HISTORY_FIELDS and k not in ("at", "kind")}
        return cls(at=_ts(data["at"]), kind=data["kind"], extra=extra, **known)


@dataclass(frozen=True)
class History:
    """A fragment's events, oldest first (the most recent 500)."""

    id: str
    status: FragmentStatus
    version: int
    events: List[HistoryEvent]

    @property
    def kinds(self) -> List[str]:
        return [event.kind for event in self.events]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "History":
        return cls(id=data["id"], status=data["status"], version=int(data["version"]),
                   events=[HistoryEvent.from_json(event) for event in data.get("events", [])])


@dataclass(frozen=True)
class NeighbourRef:
    """A linked or linking fragment and its status (``unknown`` if the store never had it).

    The context answer carries no content: ``text`` is "" here (never None, like every result
    type's); read the fragment for its text.
    """

    id: str
    status: str
    text: str = ""

    @property
    def is_blank(self) -> bool:
        return self.status == BLANK


@dataclass(frozen=True)
class SimilarRef:
    """A similar fragment: cosine of the sketch vectors in ``score``; ``text`` "" (no content
    in a context answer, as for ``NeighbourRef``)."""

    id: str
    status: str
    score: float
    text: str = ""

    @property
    def is_blank(self) -> bool:
        return self.status == BLANK


@dataclass(frozen=True)
class FragmentContext:
    """A fragment's neighbourhood: its links, its backlinks and its most similar fragments."""

    id: str
    status: FragmentStatus
    links: List[NeighbourRef]
    backlinks: List[NeighbourRef]
    similar: List[SimilarRef]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FragmentContext":
        return cls(
            id=data["id"],
            status=data["status"],
            links=[NeighbourRef(n["id"], n["status"], _text(n)) for n in data.get("links", [])],
            backlinks=[NeighbourRef(n["id"], n["status"], _text(n)) for n in data.get("backlinks", [])],
            similar=[SimilarRef(n["id"], n["status"], float(n["score"]), _text(n)) for n in data.get("similar", [])],
        )


# -- query ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryHit:
    """A ranked result. A blank hit has ``content`` None, ``text`` "" and ``rebuild_needed`` True.

    Checking ``is_blank`` (or ``content is None``) before using the text is the contract: search
    results keep flowing when fragments are lost, and say so. ``text`` is never None, so
    ``"; ".join(hit.text for hit in hits)`` works over any result list.

    ``score`` is in [0, 1]; see the README for what it means across queries.
    """

    id: str
    score: float
    version: int
    status: FragmentStatus
    tags: List[str]
    links: List[str]
    content: Optional[str] = None
    confidence: Optional[float] = None
    rebuild_needed: bool = False

    @property
    def is_blank(self) -> bool:
        return self.status == BLANK

    @property
    def text(self) -> str:
        """The content, or "" for a blank hit (never None)."""
        return self.content if self.content is not None else ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "QueryHit":
        return cls(
            id=data["id"],
            score=float(data["score"]),
            version=int(data["version"]),
            status=data["status"],
            tags=_strs(data.get("tags")),
            links=_strs(data.get("links")),
            content=data.get("content") if data.get("status") != BLANK else None,
            confidence=float(data["confidence"]) if data.get("confidence") is not None else None,
            rebuild_needed=bool(data.get("rebuild_needed", False)),
        )


@dataclass(frozen=True)
class IndexInfo:
    """The retrieval index: ``ready`` is False while it still loads after a restart."""

    ready: bool
    fragments: int
    terms: int
    #: Fragments with the built-in model's embedding of their current version.
    embedded: int = 0
    #: The built-in embedding model, None when the server runs without one (words only).
    model: Optional[str] = None


@dataclass(frozen=True)
class QueryResponse:
    results: List[QueryHit]
    took_ms: float
    index: IndexInfo
    #: The rankings used: ``"text"``, ``"meaning"``, ``"client_vector"``.
    signals: List[str] = field(default_factory=list)
    #: Why a signal was missing or partial (no model; fragments still waiting for an embedding).
    notes: List[str] = field(default_factory=list)
    #: ``"weighted"`` or ``"rrf"`` when several rankings were fused.
    fusion: Optional[str] = None

    @property
    def blanks(self) -> List[QueryHit]:
        return [hit for hit in self.results if hit.is_blank]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "QueryResponse":
        index = data.get("index") or {}
        return cls(
            results=[QueryHit.from_json(hit) for hit in data.get("results", [])],
            took_ms=float(data.get("took_ms", 0.0)),
            index=IndexInfo(ready=bool(index.get("ready")), fragments=int(index.get("fragments", 0)),
                            terms=int(index.get("terms", 0)), embedded=int(index.get("embedded", 0)),
                            model=index.get("model")),
            signals=_strs(data.get("signals")),
            notes=_strs(data.get("notes")),
            fusion=data.get("fusion"),
        )


# -- dream engine ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DreamBudget:
    """An optional budget for ``POST /dream``; members left None take the server's defaults."""

    max_repairs: Optional[int] = None
    max_seconds: Optional[float] = None
    scrub_fragments: Optional[int] = None

    def to_json(self) -> Dict[str, Any]:
        return {k: v for k, v in (("max_repairs", self.max_repairs), ("max_seconds", self.max_seconds),
                                  ("scrub_fragments", self.scrub_fragments)) if v is not None}


@dataclass(frozen=True)
class CyclePhase:
    """``repair``, ``scrub``, ``repair_after_scrub`` or ``compact``, with its counts."""

    name: str
    started_at: datetime
    duration_ms: float
    counts: Dict[str, int]


@dataclass(frozen=True)
class Compaction:
    segments_removed: int
    copies_moved: int


@dataclass(frozen=True)
class CycleEvent:
    """One unit of a cycle's work (a repair or a scrub finding); extra members in ``extra``."""

    id: str
    action: str
    outcome: str
    tier: Optional[str] = None
    reason: Optional[str] = None
    source: Optional[str] = None
    was: Optional[str] = None
    confidence: Optional[float] = None
    kind: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "CycleEvent":
        named = ("id", "action", "outcome", "tier", "reason", "source", "was", "confidence", "kind")
        return cls(
            id=data["id"], action=data["action"], outcome=data["outcome"], tier=data.get("tier"),
            reason=data.get("reason"), source=data.get("source"), was=data.get("was"),
            confidence=float(data["confidence"]) if data.get("confidence") is not None else None,
            kind=data.get("kind"), extra={k: v for k, v in data.items() if k not in named},
        )


@dataclass(frozen=True)
class CycleSummary:
    """A dream cycle without its events (``POST /dream``, ``GET /dream``).

    ``state`` is ``running``, ``finished`` or ``interrupted``; ``outcomes`` counts repairs by
    outcome (``recovered``, ``reconstructed``, ``failed``, ...), ``repairs`` by tier then outcome.
    """

    id: int
    trigger: str
    state: str
    started_at: datetime
    finished_at: Optional[datetime]
    duration_ms: float
    budget: DreamBudget
    queue_at_start: int
    scrubbed: int
    phases: List[CyclePhase]
    detected: Dict[str, int]
    repairs: Dict[str, Dict[str, int]]
    outcomes: Dict[str, int]
    compaction: Optional[Compaction] = None
    stop_reason: Optional[str] = None
    events_truncated: Optional[bool] = None
    location: Optional[str] = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @classmethod
    def _fields(cls, data: Mapping[str, Any]) -> Dict[str, Any]:
        budget = data.get("budget") or {}
        compaction = data.get("compaction")
        return dict(
            id=int(data["id"]),
            trigger=data["trigger"],
            state=data["state"],
            started_at=_ts(data["started_at"]),
            finished_at=parse_timestamp(data.get("finished_at")),
            duration_ms=float(data.get("duration_ms", 0.0)),
            budget=DreamBudget(max_repairs=budget.get("max_repairs"), max_seconds=budget.get("max_seconds"),
                               scrub_fragments=budget.get("scrub_fragments")),
            queue_at_start=int(data.get("queue_at_start", 0)),
            scrubbed=int(data.get("scrubbed", 0)),
            phases=[CyclePhase(p["name"], _ts(p["started_at"]), float(p.get("duration_ms", 0.0)), _counts(p.get("counts")))
                    for p in data.get("phases", [])],
            detected=_counts(data.get("detected")),
            repairs={str(tier): _counts(counts) for tier, counts in (data.get("repairs") or {}).items()},
            outcomes=_counts(data.get("outcomes")),
            compaction=Compaction(int(compaction["segments_removed"]), int(compaction["copies_moved"])) if compaction else None,
            stop_reason=data.get("stop_reason"),
            events_truncated=data.get("events_truncated"),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any], location: Optional[str] = None) -> "CycleSummary":
        return cls(location=location, **cls._fields(data))


@dataclass(frozen=True)
class CycleReport(CycleSummary):
    """A cycle's full report with its events (at most 20000; ``events_truncated`` says if cut)."""

    events: List[CycleEvent] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], location: Optional[str] = None) -> "CycleReport":
        return cls(location=location, events=[CycleEvent.from_json(e) for e in data.get("events", [])],
                   **cls._fields(data))


@dataclass(frozen=True)
class RepairQueue:
    """The repair queue. ``eta_seconds`` is None when nothing is due (only retries waiting out
    their backoff): the server promises no time then."""

    depth: int
    ready: int
    repair_rate_per_second: float
    eta_seconds: Optional[float]
    waiting_for_retry: int = 0


@dataclass(frozen=True)
class ScrubState:
    """Scrub progress; ``pass_number`` is the spec's ``pass`` (a Python keyword)."""

    pass_number: int
    progress: float
    cursor: Optional[str]


@dataclass(frozen=True)
class DreamStatus:
    """The scheduler: whether a cycle runs, when the next is due, the repair queue, recent cycles."""

    state: str
    current_cycle: Optional[CycleSummary]
    next_run_at: Optional[datetime]
    next_run_in_seconds: float
    current_interval_seconds: float
    clean_streak: int
    queue: RepairQueue
    scrub: ScrubState
    recent_cycles: List[CycleSummary]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "DreamStatus":
        queue = data.get("queue") or {}
        scrub = data.get("scrub") or {}
        current = data.get("current_cycle")
        return cls(
            state=data["state"],
            current_cycle=CycleSummary.from_json(current) if current else None,
            next_run_at=parse_timestamp(data.get("next_run_at")),
            next_run_in_seconds=float(data.get("next_run_in_seconds", 0.0)),
            current_interval_seconds=float(data.get("current_interval_seconds", 0.0)),
            clean_streak=int(data.get("clean_streak", 0)),
            queue=RepairQueue(int(queue.get("depth", 0)), int(queue.get("ready", 0)),
                              float(queue.get("repair_rate_per_second", 0.0)),
                              float(queue["eta_seconds"]) if queue.get("eta_seconds") is not None else None,
                              int(queue.get("waiting_for_retry", int(queue.get("depth", 0)) - int(queue.get("ready", 0))))),
            scrub=ScrubState(int(scrub.get("pass", 0)), float(scrub.get("progress", 0.0)), scrub.get("cursor")),
            recent_cycles=[CycleSummary.from_json(c) for c in data.get("recent_cycles", [])],
        )


# -- topology and health ---------------------------------------------------------------------


@dataclass(frozen=True)
class TopologyNode:
    id: str
    status: str
    confidence: Optional[float] = None


@dataclass(frozen=True)
class TopologyEdge:
    """A link; ``source`` is the spec's ``from`` (a Python keyword), ``target`` its ``to``."""

    source: str
    target: str


@dataclass(frozen=True)
class Topology:
    """The link graph, bounded: ``truncated`` is True only when nodes were left out."""

    nodes: List[TopologyNode]
    edges: List[TopologyEdge]
    counts: Dict[str, int]
    edges_outside: int
    truncated: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Topology":
        return cls(
            nodes=[TopologyNode(n["id"], n["status"], float(n["confidence"]) if n.get("confidence") is not None else None)
                   for n in data.get("nodes", [])],
            edges=[TopologyEdge(e["from"], e["to"]) for e in data.get("edges", [])],
            counts=_counts(data.get("counts")),
            edges_outside=int(data.get("edges_outside", 0)),
            truncated=bool(data.get("truncated", False)),
        )


@dataclass(frozen=True)
class Health:
    status: str


#: ``Readiness.state``: every signal is usable.
READY = "ready"
#: Words work, meaning is still catching up (embedding backlog) or the text index is loading.
PARTIAL = "partial"
#: No embedding model: words only.
TEXT_ONLY = "text_only"


@dataclass(frozen=True)
class Readiness:
    """``GET /readyz``: the store and what retrieval can use right now.

    ``state`` is the server's ``retrieval.state`` when it sends one, else derived the same way:
    ``partial`` while the embedding backlog is not 0 or the text index is not ready,
    ``text_only`` without an embedding model, ``ready`` otherwise.
    """

    status: str
    fragments: int
    pending_writes: int
    text_index_ready: bool = True
    embedding_model: Optional[str] = None
    embedded: int = 0
    embedding_backlog: int = 0
    state: str = READY
    signals: List[str] = field(default_factory=list)

    @property
    def indexed(self) -> bool:
        """True when queries see every fragment: text index ready and no embedding backlog."""
        return self.text_index_ready and self.embedding_backlog == 0

    @staticmethod
    def derive_state(text_index_ready: bool, embedding_model: Optional[str], embedding_backlog: int) -> str:
        if embedding_backlog > 0 or not text_index_ready:
            return PARTIAL
        if not embedding_model:
            return TEXT_ONLY
        return READY

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Readiness":
        retrieval = data.get("retrieval") or {}
        text_ready = bool(retrieval.get("text_index_ready", True))
        model = retrieval.get("embedding_model")
        backlog = int(retrieval.get("embedding_backlog", 0) or 0)
        state = retrieval.get("state") or cls.derive_state(text_ready, model, backlog)
        return cls(
            status=data["status"],
            fragments=int(data["fragments"]),
            pending_writes=int(data["pending_writes"]),
            text_index_ready=text_ready,
            embedding_model=model,
            embedded=int(retrieval.get("embedded", 0) or 0),
            embedding_backlog=backlog,
            state=str(state),
            signals=_strs(retrieval.get("signals")),
        )


# -- batch writes ------------------------------------------------------------------------------

#: Items per ``POST /fragments`` request: the server refuses more (413 ``batch-too-large``).
MAX_BATCH_ITEMS = 1000


@dataclass(frozen=True)
class BatchItem:
    """One fragment of ``put_fragments``: the ``PUT`` body's members plus an optional ``id`` (the
    server makes a 26-character, time-ordered one when it is None) and ``if_match`` (a version
    number: the item is written only if the fragment is at that version).

    ``put_fragments`` also takes plain dicts with the same keys; they are checked the same way.
    """

    content: str
    id: Optional[str] = None
    links: Optional[Sequence[str]] = None
    tags: Optional[Sequence[str]] = None
    metadata: Optional[Mapping[str, Any]] = None
    embedding: Optional[Sequence[float]] = None
    ttl: Optional[int] = None
    expires_at: Optional[Union[datetime, str]] = None
    if_match: Optional[int] = None

    @classmethod
    def coerce(cls, item: Union["BatchItem", Mapping[str, Any]], position: int = 0) -> "BatchItem":
        """A ``BatchItem`` from itself or a dict; ``TypeError`` for anything else or unknown keys."""
        if isinstance(item, BatchItem):
            return item
        if not isinstance(item, Mapping):
            raise TypeError(f"batch item {position} must be a dict or a BatchItem, not {type(item).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(str(key) for key in item if key not in known)
        if unknown:
            raise TypeError(f"batch item {position} has unknown member(s) {unknown}; known: {sorted(known)}")
        if "content" not in item:
            raise TypeError(f"batch item {position} has no content")
        return cls(**{str(key): value for key, value in item.items()})

    def to_json(self, position: int = 0) -> Dict[str, Any]:
        """The item's JSON, checked like ``put_fragment``'s arguments (``TypeError``/``ValueError``)."""
        what = repr(self.id) if self.id is not None else f"batch item {position}"
        body: Dict[str, Any] = {}
        if self.id is not None:
            if not isinstance(self.id, str):
                raise TypeError(f"batch item {position}: id must be a str, not {type(self.id).__name__}")
            body["id"] = self.id
        body.update(fragment_body(what, self.content, links=self.links, tags=self.tags, metadata=self.metadata,
                                  embedding=self.embedding, ttl=self.ttl, expires_at=self.expires_at))
        if self.if_match is not None:
            if isinstance(self.if_match, bool) or not isinstance(self.if_match, int):
                raise TypeError(f"{what}: if_match is a version number (int), not {type(self.if_match).__name__}")
            body["if_match"] = self.if_match
        return body


@dataclass(frozen=True)
class BatchItemResult:
    """What happened to one batch item, in the order sent.

    ``status`` is the HTTP status the item would have had alone: 201 created, 200 updated (or
    the same content again: version unchanged), 4xx refused with ``problem``. ``id`` is the
    server-made id for items sent without one (None if such an item was refused).
    """

    id: Optional[str]
    status: int
    version: Optional[int] = None
    fragment_status: Optional[str] = None
    problem: Optional[Dict[str, Any]] = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def created(self) -> bool:
        return self.status == 201

    def error(self) -> Optional[CarmaError]:
        """The item's problem as the exception a single write would have raised (not raised), or None."""
        if self.ok:
            return None
        problem = self.problem or {}
        problem_type = problem.get("type") if isinstance(problem.get("type"), str) else None
        detail = problem.get("detail")
        return error_class(problem_type, self.status)(
            type=problem_type or "about:blank", status=self.status, title=str(problem.get("title") or ""),
            detail=detail if isinstance(detail, str) else None, problem=problem)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "BatchItemResult":
        problem = data.get("problem")
        return cls(id=data.get("id"), status=int(data["status"]), version=_opt_int(data.get("version")),
                   fragment_status=data.get("fragment_status"),
                   problem=dict(problem) if isinstance(problem, Mapping) else None)


@dataclass(frozen=True)
class BatchResult:
    """The answer to ``put_fragments``: one result per item, in order, and the counts.

    When the items took several requests the results are concatenated and the counts summed.
    """

    results: List[BatchItemResult]
    created: int
    updated: int
    failed: int

    @property
    def ids(self) -> List[Optional[str]]:
        """The items' ids in order (server-made ones included; None for a refused item without id)."""
        return [result.id for result in self.results]

    @property
    def failures(self) -> List[BatchItemResult]:
        return [result for result in self.results if not result.ok]

    @property
    def ok(self) -> bool:
        """True when every item was written."""
        return not self.failures

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "BatchResult":
        results = [BatchItemResult.from_json(item) for item in data.get("results", [])]
        return cls(
            results=results,
            created=int(data.get("created", sum(1 for r in results if r.status == 201))),
            updated=int(data.get("updated", sum(1 for r in results if r.status == 200))),
            failed=int(data.get("failed", sum(1 for r in results if not r.ok))),
        )

    @classmethod
    def merge(cls, parts: Sequence["BatchResult"]) -> "BatchResult":
        return cls(results=[result for part in parts for result in part.results],
                   created=sum(part.created for part in parts), updated=sum(part.updated for part in parts),
                   failed=sum(part.failed for part in parts))


# -- namespaces and tokens ---------------------------------------------------------------------


@dataclass(frozen=True)
class NamespaceQuota:
    """Limits of a namespace; None means no limit."""

    fragments: Optional[int] = None
    bytes: Optional[int] = None

    @classmethod
    def from_json(cls, data: Optional[Mapping[str, Any]]) -> "NamespaceQuota":
        data = data or {}
        return cls(fragments=_opt_int(data.get("fragments")), bytes=_opt_int(data.get("bytes")))


@dataclass(frozen=True)
class Namespace:
    """A namespace and its usage. ``quota`` and ``created_at`` are None in listings (the server
    sends them only for one namespace); ``created`` is set by ``create_namespace`` only: True
    when the ``PUT`` created it, False when it existed (its quotas were set)."""

    name: str
    fragments: int
    bytes: int
    quota: Optional[NamespaceQuota] = None
    created_at: Optional[datetime] = None
    created: Optional[bool] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], created: Optional[bool] = None) -> "Namespace":
        quota = data.get("quota")
        return cls(name=data["name"], fragments=int(data.get("fragments", 0)), bytes=int(data.get("bytes", 0)),
                   quota=NamespaceQuota.from_json(quota) if isinstance(quota, Mapping) else None,
                   created_at=parse_timestamp(data.get("created_at")), created=created)


@dataclass(frozen=True)
class NamespacePage:
    """One page of ``GET /namespaces`` (sorted by name); ``next_cursor`` None on the last."""

    namespaces: List[Namespace]
    next_cursor: Optional[str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "NamespacePage":
        return cls(namespaces=[Namespace.from_json(item) for item in data.get("namespaces", [])],
                   next_cursor=data.get("next_cursor"))


@dataclass(frozen=True)
class NamespaceDeleted:
    """``DELETE /namespaces/{ns}``: the name and how many fragments were tombstoned."""

    name: str
    deleted: int


@dataclass(frozen=True)
class NamespaceToken:
    """A namespace's bearer token. ``token`` (the secret) is only known in the
    answer to ``create_token``: the server keeps a hash. It is left out of ``repr`` so that
    logging the object does not leak it. ``scope`` is ``read`` or ``write`` (write includes read).
    """

    id: str
    scope: str
    namespace: str
    token: Optional[str] = field(default=None, repr=False)
    created_at: Optional[datetime] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], namespace: str) -> "NamespaceToken":
        return cls(id=data["id"], scope=data["scope"], namespace=data.get("namespace") or namespace,
                   token=data.get("token"), created_at=parse_timestamp(data.get("created_at")))
