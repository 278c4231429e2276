"""Stored history edited behind Writ's back (raw SQL), on both databases: loading a record checks the chain
of what it reads, and a break is ``CHAIN_BROKEN`` naming the record and version, never a wrong value or a
library traceback. Also: answering NOT_FOUND for another tenant's record reads one row, as for a missing one.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import orjson
import psycopg
import pytest

from application.service import Writ
from domain.errors import ChainBrokenError, RecordNotFoundError
from infrastructure import persistence, postgres_recorder, sqlite_recorder
from infrastructure.backend_choice import open_backend
from infrastructure.sealing import SEALED, is_sealed, seal, transform, unseal
from tests.application.test_snapshots import grow
from tests.catalogs import SHOP_CATALOG, principal
from tests.support import writ_command

ANN = principal()


class RawStore:
    """The event and snapshot tables, through a connection of the test's own. ``edit`` works as an insider
    holding the master key would: sealed values are opened, changed and sealed again with the record's own
    key, so only the hash chain can tell."""

    def __init__(self, database_url: str) -> None:
        self.vault = open_backend(database_url).vault()
        self.sqlite = database_url.startswith("sqlite")
        if self.sqlite:
            self.path = database_url.removeprefix("sqlite:///")
            self.tables = {"events": "stored_events", "snapshots": "stored_snapshots"}
        else:
            self.url, _, schema = database_url.partition("?schema=")
            self.tables = {
                "events": f'"{schema}".writ_events',
                "snapshots": f'"{schema}".writ_snapshots',
            }

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self.sqlite:
            with sqlite3.connect(self.path) as conn:
                yield conn
        else:
            with psycopg.connect(self.url, autocommit=True) as conn:
                # past the append-only triggers
                conn.execute("SET session_replication_role = replica")
                yield conn

    def _id(self, record_id: str) -> Any:
        return UUID(record_id).hex if self.sqlite else UUID(record_id)

    def _mark(self) -> str:
        return "?" if self.sqlite else "%s"

    def edit(
        self,
        record_id: str,
        version: int,
        change: Callable[[dict[str, Any]], None],
        *,
        table: str = "events",
    ) -> None:
        m = self._mark()
        where = f"WHERE originator_id = {m} AND originator_version = {m}"
        owner = UUID(record_id)
        with self._cursor() as conn:
            topic, state = conn.execute(
                f"SELECT topic, state FROM {self.tables[table]} {where}",
                (self._id(record_id), version),
            ).fetchone()
            body = orjson.loads(bytes(state))
            cipher = self.vault.cipher(owner)
            paths = SEALED.get(topic, ())
            transform(
                body,
                paths,
                lambda path, value: (
                    unseal(cipher, owner, path, value) if is_sealed(value) else value
                ),
            )
            change(body)
            transform(body, paths, lambda path, value: seal(cipher, owner, path, value))
            conn.execute(
                f"UPDATE {self.tables[table]} SET state = {m} {where}",
                (orjson.dumps(body), self._id(record_id), version),
            )
        self.vault.close()

    def state(self, record_id: str, version: int, *, table: str = "events") -> bytes:
        m = self._mark()
        with self._cursor() as conn:
            (state,) = conn.execute(
                f"SELECT state FROM {self.tables[table]} WHERE originator_id = {m} AND "
                f"originator_version = {m}",
                (self._id(record_id), version),
            ).fetchone()
        return bytes(state)

    def last_position(self, aggregate_id: str) -> int:
        """The log position of the aggregate's newest event, as the events table holds it."""
        m, position = self._mark(), "rowid" if self.sqlite else "notification_id"
        with self._cursor() as conn:
            (found,) = conn.execute(
                f"SELECT max({position}) FROM {self.tables['events']} WHERE originator_id = {m}",
                (self._id(aggregate_id),),
            ).fetchone()
        return int(found)

    def set_state(
        self, record_id: str, version: int, state: bytes, *, table: str = "events"
    ) -> None:
        m = self._mark()
        with self._cursor() as conn:
            conn.execute(
                f"UPDATE {self.tables[table]} SET state = {m} WHERE originator_id = {m} AND "
                f"originator_version = {m}",
                (state, self._id(record_id), version),
            )

    def delete(self, record_id: str, version: int) -> None:
        m = self._mark()
        with self._cursor() as conn:
            conn.execute(
                f"DELETE FROM {self.tables['events']} WHERE originator_id = {m} "
                f"AND originator_version = {m}",
                (self._id(record_id), version),
            )


def patched_record(writ: Writ) -> str:
    record_id = writ.create(ANN, "Order", {"sku": "T-1", "total": "10"}).id
    writ.patch(ANN, "Order", record_id, {"quantity": 2})
    writ.patch(ANN, "Order", record_id, {"note": "three"})
    return record_id


def refused(action: Callable[[], Any], record_id: str, version: int) -> ChainBrokenError:
    with pytest.raises(ChainBrokenError) as caught:
        action()
    assert (caught.value.code, caught.value.record_id, caught.value.version) == (
        "CHAIN_BROKEN",
        record_id,
        version,
    )
    assert record_id in caught.value.message and f"version {version}" in caught.value.message
    return caught.value


def set_quantity(body: dict[str, Any]) -> None:
    body["changes"]["quantity"] = 999


@pytest.mark.parametrize("tamper", ["edited value", "deleted middle event"])
def test_a_tampered_event_stops_every_read_and_write_of_its_record(
    writ: Writ, database_url: str, tamper: str
) -> None:
    record_id = patched_record(writ)
    raw = RawStore(database_url)
    if tamper == "edited value":
        raw.edit(record_id, 2, set_quantity)
    else:
        raw.delete(record_id, 2)
    refused(lambda: writ.get(ANN, "Order", record_id), record_id, 2)
    refused(lambda: writ.patch(ANN, "Order", record_id, {"quantity": 5}), record_id, 2)
    refused(lambda: writ.history(ANN, "Order", record_id), record_id, 2)
    failed = [d for d in writ.decisions(ANN) if d["outcome"] == "failed"]
    assert [(d["code"], d["record_id"]) for d in failed] == [("CHAIN_BROKEN", record_id)]


SNAPSHOT_EDITS = [
    "a byte of its data flipped",
    "another record's snapshot",
    "an older snapshot of its own",
    "its data re-sealed with the record's key",
]


def bad_snapshot(writ: Writ, database_url: str, edit: str) -> str:
    """A Tally at version 150 whose latest snapshot (at 150: grown 50 events per save) is ``edit``-ed."""
    record_id, other = str(grow(writ, 150)), str(grow(writ, 101))
    raw = RawStore(database_url)
    if edit == "a byte of its data flipped":
        state = raw.state(record_id, 150, table="snapshots")
        start = state.index(b'"$sealed":"') + 20
        raw.set_state(
            record_id,
            150,
            state[:start] + bytes([state[start] ^ 1]) + state[start + 1 :],
            table="snapshots",
        )
    elif edit == "another record's snapshot":
        raw.set_state(record_id, 150, raw.state(other, 101, table="snapshots"), table="snapshots")
    elif edit == "an older snapshot of its own":
        raw.set_state(
            record_id, 150, raw.state(record_id, 101, table="snapshots"), table="snapshots"
        )
    else:
        raw.edit(
            record_id, 150, lambda body: body["state"]["data"].update(a=12345), table="snapshots"
        )
    return record_id


@pytest.mark.parametrize("edit", SNAPSHOT_EDITS)
def test_a_bad_snapshot_is_passed_over_and_the_record_read_from_its_events(
    writ: Writ, database_url: str, edit: str
) -> None:
    record_id = bad_snapshot(writ, database_url, edit)
    got = writ.get(ANN, "Tally", record_id)
    assert (got["a"], got["_version"]) == (149, 150), (
        "what the events say, not what the snapshot says"
    )
    [loaded] = writ._core.loader.load_many(
        [UUID(record_id)], tenant="acme", model="Tally"
    ).values()  # a bulk's read
    assert (loaded.data["a"], loaded.version) == (149, 150)
    assert writ.patch(ANN, "Tally", record_id, {"a": 150}).version == 151


@pytest.mark.parametrize("edit", SNAPSHOT_EDITS)
def test_a_tail_removed_from_under_a_bad_snapshot_is_a_break(
    writ: Writ, database_url: str, edit: str
) -> None:
    """A snapshot of no use still says, by its version, that the record reached it: the events replayed in its
    place must reach it too."""
    record_id = bad_snapshot(writ, database_url, edit)
    RawStore(database_url).delete(record_id, 150)
    refused(lambda: writ.get(ANN, "Tally", record_id), record_id, 150)
    refused(lambda: writ.patch(ANN, "Tally", record_id, {"a": 0}), record_id, 150)
    refused(  # a bulk's read
        lambda: writ._core.loader.load_many([UUID(record_id)], tenant="acme", model="Tally"),
        record_id,
        150,
    )


def test_a_tail_removed_from_under_a_snapshot_is_a_break(writ: Writ, database_url: str) -> None:
    """The snapshot proves the record reached its version: without the event there (and those after), the
    record is not served as of the last event left, by one load or by a bulk's."""
    record_id = str(grow(writ, 150))  # its latest snapshot: at 150, its last event
    RawStore(database_url).delete(record_id, 150)
    refused(lambda: writ.get(ANN, "Tally", record_id), record_id, 150)
    refused(
        lambda: writ._core.loader.load_many([UUID(record_id)], tenant="acme", model="Tally"),
        record_id,
        150,
    )


def test_a_fresh_process_reports_the_break_on_one_line(
    writ: Writ, database_url: str, tmp_path: Path
) -> None:
    record_id = patched_record(writ)
    RawStore(database_url).edit(record_id, 3, lambda body: body["changes"].update(note="forged"))
    catalog = tmp_path / "writ.toml"
    catalog.write_text(SHOP_CATALOG)
    env = {"WRIT_DATABASE_URL": database_url, "WRIT_CATALOG": str(catalog)}
    done = writ_command(
        "get", "Order", record_id, "-u", "alice", "-t", "acme", "-r", "clerk", check=False, env=env
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"error: CHAIN_BROKEN: Order {record_id}: history broken at version 3"
    ), done.stderr


def test_another_tenants_record_is_not_found_after_reading_one_row_and_opening_nothing(
    writ: Writ,
) -> None:
    """Answering NOT_FOUND costs about the same whether or not another tenant's record has the id: its first
    event is all that is read, in one read, and nothing of it is decoded (its data unsealed, its key fetched)."""
    theirs = str(grow(writ, 400))
    missing = "00000000-0000-4000-8000-000000000000"
    reads: list[Any] = []
    recorder: Any = writ._core.store.recorder
    read_record, decode = recorder.read_record, writ._core.store.events.mapper.to_domain_event
    decoded: list[Any] = []

    def counting(record_id: Any, version: Any = None, **named: Any) -> Any:
        reads.append(read_record(record_id, version, **named))
        return reads[-1]

    def decoding(stored: Any) -> Any:
        decoded.append((stored.originator_id, stored.originator_version))
        return decode(stored)

    recorder.read_record = counting
    writ._core.store.events.mapper.to_domain_event = decoding
    try:
        for record_id in (theirs, missing):
            reads.clear()
            decoded.clear()
            with pytest.raises(RecordNotFoundError):
                writ.get(principal("eve", "globex"), "Tally", record_id)
            [read] = reads
            assert read.snapshot is None and read.since == [], (
                f"{record_id}: read a snapshot ({read.snapshot is not None}) and {len(read.since)} events"
            )
            assert decoded == [], f"{record_id}: decoded {decoded}"
        assert reads[0].first is None and not reads[0].withheld
    finally:
        recorder.read_record = read_record
        writ._core.store.events.mapper.to_domain_event = decode
    own = writ.get(ANN, "Tally", theirs)
    assert own["_version"] == 400, "the owner's read is whole"


def test_audit_attributes_that_spell_another_tenant_do_not_open_the_read_to_it(writ: Writ) -> None:
    """A caller writes its own audit attributes into its record's first event: written to look like the
    record's own tenant field, they still do not make the read go past that event for that tenant."""
    forged = {"x": "y", "model": "Tally", "tenant": "acme", "data": '{"$sealed":"'}
    eve = principal("eve", "globex").for_purpose("testing", audit_attributes=forged)
    record_id = writ.create(eve, "Tally", {"a": 1}).id
    for value in range(2, 30):
        writ.patch(eve, "Tally", record_id, {"a": value})
    recorder: Any = writ._core.store.recorder
    read_record, reads = recorder.read_record, []

    def counting(*args: Any, **named: Any) -> Any:
        reads.append(read_record(*args, **named))
        return reads[-1]

    recorder.read_record = counting
    try:
        with pytest.raises(RecordNotFoundError):
            writ.get(ANN, "Tally", record_id)
    finally:
        recorder.read_record = read_record
    [read] = reads
    assert read.withheld and read.since == [] and read.snapshot is None, "read past the first event"


def counted_reads(writ: Writ, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What each of the recorder's record reads returned, from now on (for the rest of the test)."""
    recorder: Any = writ._core.store.recorder
    read_record, reads = recorder.read_record, []

    def counting(*args: Any, **named: Any) -> Any:
        reads.append(read_record(*args, **named))
        return reads[-1]

    monkeypatch.setattr(recorder, "read_record", counting)
    return reads


def test_a_first_event_the_reader_cannot_place_costs_a_second_read_never_a_wrong_record(
    writ: Writ, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read withholds the rest of a record whose first event does not hold what the caller's record would
    (a state laid out by another version): the loader decides on the decoded event, and reads the rest."""
    # snapshots, and events past the last of them
    record_id = grow(writ, 160)
    # a layout the reader does not know
    for module in (postgres_recorder, sqlite_recorder):

        def unknown(tenant: str | None, model: str | None) -> bytes | None:
            return None if tenant is None and model is None else b',"tenant":"elsewhere",'

        monkeypatch.setattr(module, "named_by", unknown)
    reads = counted_reads(writ, monkeypatch)
    got = writ.get(ANN, "Tally", record_id)
    assert (got["a"], got["_version"]) == (159, 160)
    assert [read.withheld for read in reads] == [True, False], "withheld, then read again"
    assert reads[1].snapshot is not None, "read again from its snapshot"
    assert writ.patch(ANN, "Tally", record_id, {"a": 160}).version == 161


def test_another_tenants_record_the_reader_cannot_place_is_refused_on_its_decoded_first_event(
    writ: Writ, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the reader can tell nothing from a first event's bytes (a layout it does not know: neither that it
    is the caller's nor that it is another's), the loader's check of the decoded event is all that stands
    between a tenant and another's record (or a record of another model): it is not found, for reads and for
    writes."""
    theirs = writ.create(principal("gus", "globex"), "Tally", {"a": 1}).id
    # hers, of another model
    customer = writ.create(ANN, "Customer", {"email": "ann@acme.example"}).id
    monkeypatch.setattr(persistence, "names_another", lambda *_: False)
    monkeypatch.setattr(sqlite_recorder, "names_another", lambda *_: False)
    for module in (postgres_recorder, sqlite_recorder):
        monkeypatch.setattr(
            module,
            "named_by",
            lambda tenant, model: None if tenant is None and model is None else b"unknown layout",
        )
    reads = counted_reads(writ, monkeypatch)
    with pytest.raises(RecordNotFoundError):
        writ.get(ANN, "Tally", theirs)
    with pytest.raises(RecordNotFoundError):
        writ.patch(ANN, "Tally", theirs, {"a": 2})
    with pytest.raises(RecordNotFoundError):
        writ.get(ANN, "Tally", customer)
    assert reads and all(r.withheld and not r.another for r in reads), "the reader could not tell"
    assert writ.get(principal("gus", "globex"), "Tally", theirs)["a"] == 1


def test_a_digest_is_hmac_sha256_under_the_key_derived_from_the_data_key(database_url: str) -> None:
    """Pinned, so histories written by earlier versions still verify: HMAC-SHA256 under HMAC-SHA256(data key,
    "writ digest key") of the canonical JSON of [purpose, content]; the same again when asked again."""
    vault = open_backend(database_url).vault()
    owner = uuid4()
    vault.new_key(owner)
    [(_, wrapped, master_id)] = vault.pending([owner]).rows
    data_key = vault.masters.unwrap(owner, wrapped, master_id)
    content = {"total": "5", "sku": "A-1", "lines": [1, None]}
    canonical = b'["body",{"lines":[1,null],"sku":"A-1","total":"5"}]'
    expected = hmac.new(
        hmac.digest(data_key, b"writ digest key", "sha256"), canonical, hashlib.sha256
    ).hexdigest()
    assert [vault.digest(owner, "body", content) for _ in range(2)] == [expected, expected]
    assert vault.digest(owner, "state", content) != expected
    vault.close()
