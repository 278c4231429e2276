"""Event storage plumbing shared by both databases: orjson mapping, and what Writ's recorders add.

``OrjsonMapper`` stores an event's attributes as one orjson document (events
hold JSON-native values, and the timestamp round-trips as ISO-8601).
The recorders (``infrastructure.sqlite_recorder``, ``infrastructure.postgres_recorder``) extend the
library's SQLite and PostgreSQL application recorders with the queries Writ adds, declared here.
``PositionLookup``: the notification position of a stored event, so an idempotent replay can report the
position of the original write. ``LogQueries``, for the workers that follow the log: which records of a
batch have been purged since (the relay must never publish their data again),
how many notifications of some topics lie past a position (a worker's lag), and
which aggregates an id prefix may name (the CLI takes prefixes like git).
``TaggedSaves`` tags each save under the writer key, ``Histories`` reads many records' histories a part at a
time, and ``first_claims`` picks the saves of a batch that can be stored. Only the SQL differs per backend;
the PostgreSQL recorder is its own module, so the embedded default never imports the PostgreSQL driver.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder, Transcoding
from eventsourcing.utils import get_topic, resolve_topic

from application.encoding import dataclass_of
from application.ports import Part, RecordRows
from domain.errors import ChainBrokenError
from domain.record import Record
from infrastructure.documents import kept_json
from infrastructure.sealing import (
    COVERS,
    EMPTY,
    MARK,
    OPEN,
    SEALED,
    SHREDDED,
    STATUS,
    SealBroken,
    seal,
    sealed_places,
    transform,
    unseal,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from infrastructure.vault import Vault
    from infrastructure.writer_keys import SaveTag, WriterKeys


class OrjsonTranscoder(Transcoder):
    """The functions themselves, not methods that call them: no Python frame per event encoded or decoded (a bulk
    update does tens of thousands)."""

    encode = staticmethod(kept_json)  # type: ignore[assignment]  # kept until its save
    decode = staticmethod(orjson.loads)  # type: ignore[assignment]

    def register(self, transcoding: Transcoding) -> None:
        raise NotImplementedError("OrjsonTranscoder encodes JSON-native values only")


class OrjsonMapper(Mapper[UUID]):
    """Events as orjson documents, their data sealed with the originator's key (``infrastructure.sealing``)."""

    vault: Vault | None = None
    """Set by the backend that opens the store; sealing without one is refused."""

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        state = vars(domain_event).copy()  # a dict's copy clones its table
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        topic = get_topic(type(domain_event))
        if topic in SEALED:
            self._seal(state, topic, originator_id)
        stored = self.transcoder.encode(state)
        if self.compressor:
            stored = self.compressor.compress(stored)
        if self.cipher:
            stored = self.cipher.encrypt(stored)
        return stored_event(originator_id, originator_version, topic, stored)

    def decode_state(self, stored: bytes) -> dict[str, Any]:
        """An event's stored attributes as a JSON-native dict (the timestamp stays ISO text), still sealed
        (cipher and compressor honoured)."""
        if self.cipher:
            stored = self.cipher.decrypt(stored)
        if self.compressor:
            stored = self.compressor.decompress(stored)
        state: dict[str, Any] = self.transcoder.decode(stored)
        return state

    def opened_state(
        self,
        stored: bytes,
        topic: str,
        originator_id: UUID,
        version: int,
        keys: Mapping[int, AESGCM] | None = None,
    ) -> dict[str, Any]:
        """``decode_state`` with the seals opened (or the values shredded, when the key is gone): what log
        followers fold. ``keys``: the live keys of the batch being read (``Vault.opening_keys``), else the
        vault's."""
        state = self.decode_state(stored)
        if topic in SEALED:
            self._open(state, topic, originator_id, version, keys)
        return state

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        originator_id = stored_event.originator_id
        originator_id = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        topic, version = stored_event.topic, stored_event.originator_version
        state = self.decode_state(stored_event.state)  # ``opened_state``, one call less
        if topic in SEALED:
            self._open(state, topic, originator_id, version)
        state["timestamp"] = _moment(state["timestamp"])
        state["originator_id"] = originator_id
        state["originator_version"] = version
        event = object.__new__(resolve_topic(topic))
        object.__setattr__(event, "__dict__", state)
        return event  # type: ignore[no-any-return]

    def _seal(self, state: dict[str, Any], topic: str, owner: UUID) -> None:
        if self.vault is None:
            raise RuntimeError(
                "this event store seals data: open it through its backend (it wires the vault)"
            )
        covers = state.get(COVERS)  # most events cover no other record
        covers = [UUID(str(record)) for record in covers] if covers else []
        cipher = self.vault.writing_cipher(owner, covers)
        transform(state, SEALED[topic], partial(seal, cipher, owner))  # no Python frame per value

    def _open(
        self,
        state: dict[str, Any],
        topic: str,
        owner: UUID,
        version: int,
        keys: Mapping[int, AESGCM] | None = None,
    ) -> None:
        places = sealed_places(state, SEALED[topic])
        if not places:
            return  # written before sealing
        if self.vault is None:
            raise RuntimeError(
                "this event store seals data: open it through its backend (it wires the vault)"
            )
        cipher = self.vault.cipher(owner) if keys is None else keys.get(owner.int)
        if cipher is None:
            for holder, name, path in places:
                holder[name] = EMPTY[path]
            state[STATUS] = SHREDDED
            return
        try:
            for holder, name, path in places:
                holder[name] = unseal(cipher, owner, path, holder[name])
        except SealBroken as broken:
            raise ChainBrokenError(
                f"{owner}: history broken at version {version} ({broken})",
                record_id=str(owner),
                version=version,
            ) from None
        state[STATUS] = OPEN


def stored_event(
    originator_id: UUID, originator_version: int, topic: str, state: bytes
) -> StoredEvent:
    """``StoredEvent(...)``, its fields set at once rather than one by one through ``object.__setattr__``
    (a bulk update reads and writes tens of thousands)."""
    return dataclass_of(
        StoredEvent,
        originator_id=originator_id,
        originator_version=originator_version,
        topic=topic,
        state=state,
    )


@lru_cache(maxsize=1_024)
def _moment(text: str) -> datetime:
    """``datetime.fromisoformat``, remembered: the events of one save share their timestamp, and a bulk update
    decodes thousands of them (a datetime never changes, so one object serves them all)."""
    return datetime.fromisoformat(text)


class PositionLookup(ABC):
    @abstractmethod
    def position_of(self, originator_id: UUID, version: int) -> int | None:
        """Notification id of one stored event, or None when there is none."""


class LogQueries(ABC):
    PURGED_TOPIC = Record.Purged.TOPIC

    @abstractmethod
    def purged_among(self, record_ids: Collection[UUID]) -> set[UUID]:
        """The ids among ``record_ids`` that have a ``Purged`` event, at any position."""

    @abstractmethod
    def first_ids(self, low: UUID, high: UUID, topic: str, limit: int) -> list[UUID]:
        """The ids from ``low`` to ``high`` (inclusive), in order, at most ``limit``, of the aggregates whose first
        event has ``topic``: what an id prefix may name (the CLI accepts one). A range on the events' key."""

    @abstractmethod
    def count_after(self, position: int, topics: Sequence[str]) -> int:
        """How many notifications with one of ``topics`` lie past ``position`` (a worker's lag)."""

    @abstractmethod
    def last_position(self, topics: Sequence[str]) -> int:
        """The position of the newest notification with one of ``topics`` (0 when there is none)."""

    @abstractmethod
    def log_identity(self) -> str:
        """The identity drawn when the log's tables were made (``infrastructure.log_identity``)."""

    @abstractmethod
    def select_rows(
        self, after: int, until: int | None, limit: int
    ) -> list[tuple[int, UUID, int, str, bytes]]:
        """Raw log rows ``(position, originator id, version, topic, state)`` after ``after`` (up to ``until``),
        in position order, as plain tuples: what ``writ verify`` reads, every event once."""

    @abstractmethod
    def states_before(
        self, after: int, until: int, topics: Sequence[str]
    ) -> list[tuple[Any, int, bytes]]:
        """For each originator with an event after position ``after`` up to ``until``: ``(originator id, version,
        state)`` of its last event with one of ``topics`` at or before ``after`` (by position; none when it has
        none): where a range of ``writ verify``'s walk picks its records up."""


class TaggedSaves:
    """A recorder whose saves carry their tag under the writer key (``infrastructure.writer_keys``)."""

    writer_keys: Callable[[], WriterKeys] | None = None
    """Set by the backend that opens the store (read at the first save: a process that never saves needs no
    writer key); saving without it is refused."""

    def save_tag(self, stored_events: Sequence[StoredEvent]) -> SaveTag:
        if self.writer_keys is None:
            raise RuntimeError(
                "this event store tags its saves: open it through its backend (it wires the keys)"
            )
        return self.writer_keys().tag(stored_events)


class Histories(ABC):
    """Many records' histories a part at a time (a bulk update loads thousands of records at once): see
    ``application.ports.HistoryReader``."""

    @property
    def snapshots_table_name(self) -> str:
        events: str = self.events_table_name  # type: ignore[attr-defined]
        return events.removesuffix("_events") + "_snapshots"

    @abstractmethod
    def read_histories(self, parts: Iterable[Sequence[UUID]]) -> Iterator[Part]:
        """For each part: its latest snapshots, and its events from each one's version on (from 1 without)."""

    @abstractmethod
    def read_record(
        self,
        record_id: UUID,
        version: int | None = None,
        *,
        tenant: str | None = None,
        model: str | None = None,
    ) -> RecordRows:
        """``application.ports.HistoryReader.read_record``, in one view of the tables (the snapshot and the events
        since always fit)."""


def named_by(tenant: str | None, model: str | None) -> bytes | None:
    """What a ``Created`` event's stored state holds when it names this model and tenant (its last keys as the
    mapper writes them, up to the start of its sealed data: audit attributes, which a caller writes into the
    same state, are strings, so they cannot hold it); None when neither is asked for. A read finds it in the
    bytes, decoding nothing: a first event without it (another tenant's record) is all ``read_record`` reads.
    The caller decides on the decoded event all the same: a state laid out otherwise (written by another
    version) is read again."""
    if tenant is None and model is None:
        return None
    if tenant is None:
        return b',"model":%b,"tenant":' % orjson.dumps(model)
    named = b',"tenant":%b,"data":{"%b":"' % (orjson.dumps(tenant), MARK.encode())
    return named if model is None else b',"model":%b%b' % (orjson.dumps(model), named)


def names_another(stored: StoredEvent, tenant: str | None, model: str | None) -> bool:
    """Whether a first event's plain fields (its state's JSON, as the mapper writes it) name another tenant or
    model than asked for: told without unsealing anything. A state without them (laid out otherwise, or not
    JSON) names nothing here: decoding it decides."""
    try:
        plain = orjson.loads(stored.state)
    except orjson.JSONDecodeError:
        return False
    named = plain if isinstance(plain, dict) else {}
    return (tenant is not None and named.get("tenant", tenant) != tenant) or (
        model is not None and named.get("model", model) != model
    )


def record_rows(
    rows: Iterable[tuple[int, StoredEvent]], tenant: str | None, model: str | None
) -> RecordRows:
    """``RecordRows`` from a ``read_record`` statement's rows, each tagged: ``FIRST`` (or ``WITHHELD``: the
    first event, which did not name what was asked for), ``SNAPSHOT`` or ``SINCE``."""
    first, snapshot, since, withheld = None, None, [], False
    for kind, stored in rows:
        if kind == SINCE:
            since.append(stored)
        elif kind == SNAPSHOT:
            snapshot = stored
        else:
            first, withheld = stored, kind == WITHHELD
    another = withheld and first is not None and names_another(first, tenant, model)
    return RecordRows(first, snapshot, since, withheld, another)


FIRST, SNAPSHOT, SINCE, WITHHELD = 0, 1, 2, 3
"""The tags of ``read_record``'s rows."""
LAST_VERSION = 2**63 - 1
"""Past every version (a bigint's largest): "up to the last" in ``read_record``'s statements."""


def first_claims(groups: Sequence[Sequence[StoredEvent]]) -> list[int]:
    """The indexes of the groups (saves) whose events no earlier kept group also writes: of two saves that
    decided on the same version of an aggregate, only the first can be stored."""
    if len(groups) == 1:
        return [0]  # a lone save: nothing before it claims anything
    claimed: set[tuple[str, int]] = set()
    kept = []
    for index, group in enumerate(groups):
        keys = {(str(event.originator_id), event.originator_version) for event in group}
        if claimed.isdisjoint(keys):
            claimed |= keys
            kept.append(index)
    return kept
