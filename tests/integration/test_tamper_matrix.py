"""The tamper matrix: every way an insider can change Writ's store, each caught by ``writ verify`` run as a
process of its own, on both databases, with the record and version named where one exists and exit status 1.

Each row is one attack by one attacker of the README's table (``tests.integration.insider``): a role that can
only insert (on PostgreSQL a real role with SELECT and INSERT), the tables' owner or a superuser (raw SQL past
the triggers), someone who also holds the master key (seals and digests as Writ does), or the writer key too
(tags as Writ does). A row lists exactly what verify must report: ``(kind, record, version)``. An untouched
store verifies clean, with the signing key and on a host holding only the public key.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from application.service import Writ
from domain.chain import link
from infrastructure.backend_choice import open_backend
from infrastructure.checkpoints import Checkpoint, CheckpointTable, Signer
from infrastructure.sealing import SEALED, is_sealed, seal, transform, unseal
from infrastructure.verification import verify as verify_store
from tests.application.test_snapshots import grow
from tests.catalogs import principal
from tests.integration.insider import Insider
from tests.support import writ_command

CLERK, MANAGER = principal("carol"), principal("maria", "acme", "manager")
SEED = b"s" * 32
SIGNING = {"WRIT_SIGNING_KEY": base64.b64encode(SEED).decode()}
PUBLIC = base64.b64encode(Signer(Ed25519PrivateKey.from_private_bytes(SEED)).public_raw).decode()
WRITER_KEY = base64.b64decode("d3JpdC10ZXN0LXdyaXRlci1rZXktMzItYnl0ZXMhISE=")  # tests/conftest.py's
VERIFY_ONLY = {"WRIT_SIGNING_KEY": "", "WRIT_MASTER_KEY": "", "WRIT_WRITER_KEY": ""}
"""A host that holds no key at all (the SQLite file's directory holds none either: the keys come from the
environment in tests)."""
Expected = set[tuple[str, str | None, int | None]]


@dataclass
class Story:
    """What the history holds: orders ``a`` and ``b`` (three events each, saved apart), ``c`` purged, ``d``, and
    tallies ``t`` and ``u`` with snapshots at versions 51 and 60."""

    a: str
    b: str
    c: str
    d: str
    t: str
    u: str


@dataclass
class Scene:
    writ: Writ
    insider: Insider
    story: Story
    database_url: str
    tmp_path: Path


def history(writ: Writ) -> Story:
    a = writ.create(CLERK, "Order", {"sku": "M-1", "total": "10"}).id
    b = writ.create(CLERK, "Order", {"sku": "M-2", "total": "20"}).id
    for record_id in (a, b):
        writ.patch(CLERK, "Order", record_id, {"quantity": 2})
    for record_id in (a, b):
        writ.patch(CLERK, "Order", record_id, {"note": "three"})
    c = writ.create(CLERK, "Order", {"sku": "M-3", "total": "30"}).id
    writ.purge(MANAGER, "Order", c)
    d = writ.create(CLERK, "Order", {"sku": "M-4", "total": "40"}).id
    writ.create_many(CLERK, "Order", [{"sku": f"M-B{n}", "total": "1"} for n in range(5)])
    return Story(a, b, c, d, str(grow(writ, 60)), str(grow(writ, 60)))


def verify(
    scene: Scene, *extra: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    done = writ_command(
        "verify",
        "--json",
        *extra,
        check=False,
        env={"WRIT_DATABASE_URL": scene.database_url, **SIGNING, **(env or {})},
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, orjson.loads(done.stdout)


def found(report: dict[str, Any]) -> Expected:
    return {(f["kind"], f["record_id"], f["version"]) for f in report["findings"]}


# -- what the attackers do ----------------------------------------------------------------


def doc(scene: Scene, record_id: str, version: int) -> dict[str, Any]:
    return dict(orjson.loads(scene.insider.state(record_id, version)))


def forged_patch(
    scene: Scene,
    record_id: str,
    after: int,
    changes: dict[str, Any],
    *,
    meta: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> tuple[str, bytes]:
    """Writ's own code, run by someone holding the master key: the record as of ``after`` patched with
    ``changes`` (meta and time as given, else those of the event that followed), sealed and digested as Writ
    would; its topic and stored bytes."""
    writ = scene.writ
    original = doc(scene, record_id, after + 1) if meta is None or at is None else {}
    record = writ._core.store.repository.get(UUID(record_id), version=after)
    # past the clamp: this insider picks the time
    record.modified_on = datetime(2000, 1, 1, tzinfo=UTC)
    record.patch(
        changes,
        meta or original["meta"],
        at or datetime.fromisoformat(original["timestamp"]),
        writ._core.keys.digest,
    )
    stored = writ._core.store.mapper.to_stored_event(record.pending_events[-1])
    return stored.topic, stored.state


def relinked(
    scene: Scene, record_id: str, state: dict[str, Any], version: int, previous_hash: str
) -> bytes:
    """An event's stored document made to link as ``version`` after ``previous_hash`` (the link is public)."""
    state["hash"] = link(
        previous_hash,
        record_id=UUID(record_id),
        version=version,
        kind="Patched",
        timestamp=datetime.fromisoformat(state["timestamp"]),
        meta=state["meta"],
        body_digest=state["body_digest"],
        state_digest=state["state_digest"],
    )
    return orjson.dumps(state)


def resealed_snapshot(scene: Scene, record_id: str, version: int) -> bytes:
    """The snapshot's data opened, changed and sealed again with the record's own key (the master key opens it)."""
    vault = open_backend(scene.database_url).vault()
    owner = UUID(record_id)
    body = orjson.loads(scene.insider.state(record_id, version, "snapshots"))
    cipher = vault.cipher(owner)
    paths = SEALED["writ.record:Snapshot"]
    transform(
        body,
        paths,
        lambda path, value: unseal(cipher, owner, path, value) if is_sealed(value) else value,
    )
    body["state"]["data"]["a"] = 12345
    transform(body, paths, lambda path, value: seal(cipher, owner, path, value))
    vault.close()
    return orjson.dumps(body)


def flipped(state: bytes) -> bytes:
    start = state.index(b'"$sealed":"') + 20
    return state[:start] + bytes([state[start] ^ 1]) + state[start + 1 :]


def position_of(scene: Scene, record_id: str, version: int) -> int:
    return scene.insider.event(record_id, version)[0]


# -- the rows -------------------------------------------------------------------------------


def rollback_by_an_insert_only_role(s: Scene) -> Expected:
    """The issue's attack: a's old version 2 appended again as version 4, linked to version 3, with its manifest
    row and a chain row extending the chain (no tag: the role has no writer key)."""
    old, a = doc(s, s.story.a, 2), s.story.a
    s.insider.append_save(
        [(a, 4, "writ.record:Patched", relinked(s, a, old, 4, doc(s, a, 3)["hash"]))],
        insert_only=True,
    )
    return {("unauthenticated", a, 4), ("timestamp", a, 4), ("decision", a, 4)}


def forged_append_with_the_master_key(s: Scene) -> Expected:
    """A new, consistent version 4 (sealed, digested and linked as Writ would, fresh decision and time),
    appended by the insert-only role with the last save's tag copied."""
    a = s.story.a
    meta = {**doc(s, a, 3)["meta"], "decision_id": "00000000-0000-4000-8000-00000000f0f0"}
    topic, state = forged_patch(s, a, 3, {"note": "forged"}, meta=meta, at=datetime.now(UTC))
    mac, key = s.insider.last_tag()
    s.insider.append_save([(a, 4, topic, state)], insert_only=True, mac=mac, writer_key_id=key)
    return {("unauthenticated", a, 4)}


def snapshot_byte_flipped(s: Scene) -> Expected:
    s.insider.set_state(
        s.story.t, 60, flipped(s.insider.state(s.story.t, 60, "snapshots")), "snapshots"
    )
    return {("snapshot", s.story.t, 60)}


def snapshot_of_another_record(s: Scene) -> Expected:
    s.insider.set_state(s.story.t, 60, s.insider.state(s.story.u, 60, "snapshots"), "snapshots")
    return {("snapshot", s.story.t, 60)}


def snapshot_of_an_older_version(s: Scene) -> Expected:
    s.insider.set_state(s.story.t, 60, s.insider.state(s.story.t, 51, "snapshots"), "snapshots")
    return {("snapshot", s.story.t, 60)}


def snapshot_moved_past_the_last_event(s: Scene) -> Expected:
    """A snapshot at a version the record never reached: a reader would take it for the record as it stands."""
    s.insider.execute(
        f"UPDATE {s.insider.table('snapshots')} SET originator_version = 999 "
        "WHERE originator_id = ? AND originator_version = 60",
        (s.insider.key(s.story.t),),
    )
    return {("snapshot", s.story.t, 999)}


def snapshot_resealed_with_the_master_key(s: Scene) -> Expected:
    s.insider.set_state(s.story.t, 60, resealed_snapshot(s, s.story.t, 60), "snapshots")
    return {("snapshot", s.story.t, 60)}


def key_destroyed_without_a_purge(s: Scene) -> Expected:
    a, table = s.story.a, s.insider.table("writ_keys")
    if not s.insider.sqlite:  # the session's own variable no longer lets anyone past the guard
        with (
            pytest.raises(psycopg.Error, match="data keys change only through purge and rotation"),
            s.insider.connection(triggers=True) as conn,
            conn.transaction(),
        ):
            conn.execute("SET LOCAL writ.key_change = 'purge'")
            conn.execute(
                f"UPDATE {table} SET wrapped = NULL, destroyed_at = now() WHERE id = %s", (UUID(a),)
            )
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege),
            s.insider.connection(insert_only=True) as conn,
        ):
            conn.execute(
                f"UPDATE {table} SET wrapped = NULL, destroyed_at = now() WHERE id = %s", (UUID(a),)
            )
    s.insider.execute(
        f"UPDATE {table} SET wrapped = NULL, destroyed_at = '2026-01-01' WHERE id = ?",
        (s.insider.key(a),),
    )
    return {("key_destroyed", a, None)}


def key_of_another_record(s: Scene) -> Expected:
    a, d, table = s.story.a, s.story.d, s.insider.table("writ_keys")
    s.insider.execute(
        f"UPDATE {table} SET wrapped = (SELECT wrapped FROM {table} WHERE id = ?), master_key = "
        f"(SELECT master_key FROM {table} WHERE id = ?) WHERE id = ?",
        (s.insider.key(d), s.insider.key(d), s.insider.key(a)),
    )
    return {("key_invalid", a, None)}


def key_row_deleted(s: Scene) -> Expected:
    s.insider.execute(
        f"DELETE FROM {s.insider.table('writ_keys')} WHERE id = ?", (s.insider.key(s.story.a),)
    )
    return {("key_missing", s.story.a, None)}


def manifest_row_deleted(s: Scene) -> Expected:
    s.insider.execute(
        f"DELETE FROM {s.insider.table('writ_log_manifest')} WHERE position = ?",
        (position_of(s, s.story.a, 2),),
    )
    return {("manifest", s.story.a, 2)}


def timestamps_backwards_with_every_key(s: Scene) -> Expected:
    """a's version 3 rewritten dated before version 2, sealed, digested, linked and tagged as Writ would."""
    a = s.story.a
    before = datetime.fromisoformat(doc(s, a, 2)["timestamp"]) - timedelta(seconds=1)
    state = forged_patch(s, a, 2, {"note": "three"}, meta=doc(s, a, 3)["meta"], at=before)[1]
    s.insider.set_state(a, 3, state)
    s.insider.recompute_log_tables(WRITER_KEY)
    return {("timestamp", a, 3)}


def decision_reused_on_its_record_with_every_key(s: Scene) -> Expected:
    a = s.story.a
    meta = {**doc(s, a, 3)["meta"], "decision_id": doc(s, a, 2)["meta"]["decision_id"]}
    s.insider.set_state(
        a,
        3,
        forged_patch(
            s,
            a,
            2,
            {"note": "three"},
            meta=meta,
            at=datetime.fromisoformat(doc(s, a, 3)["timestamp"]),
        )[1],
    )
    s.insider.recompute_log_tables(WRITER_KEY)
    return {("decision", a, 3)}


def decision_reused_by_another_command_with_every_key(s: Scene) -> Expected:
    a, b = s.story.a, s.story.b
    meta = {**doc(s, b, 3)["meta"], "decision_id": doc(s, a, 1)["meta"]["decision_id"]}
    s.insider.set_state(
        b,
        3,
        forged_patch(
            s,
            b,
            2,
            {"note": "three"},
            meta=meta,
            at=datetime.fromisoformat(doc(s, b, 3)["timestamp"]),
        )[1],
    )
    s.insider.recompute_log_tables(WRITER_KEY)
    return {("decision", b, 3)}


def decision_reused_in_the_next_save_with_the_writer_key(s: Scene) -> Expected:
    """c's tombstone made to carry the decision of c's create, the save before it (a change of metadata only:
    relinked, every log table and tag made to agree): a command decides a record once."""
    c = s.story.c
    tombstone = doc(s, c, 2)
    tombstone["meta"]["decision_id"] = doc(s, c, 1)["meta"]["decision_id"]
    tombstone["hash"] = link(
        doc(s, c, 1)["hash"],
        record_id=UUID(c),
        version=2,
        kind="Purged",
        timestamp=datetime.fromisoformat(tombstone["timestamp"]),
        meta=tombstone["meta"],
        body_digest=tombstone["body_digest"],
        state_digest=tombstone["state_digest"],
    )
    s.insider.set_state(c, 2, orjson.dumps(tombstone))
    s.insider.recompute_log_tables(WRITER_KEY)
    return {("decision", c, 2)}


def metadata_edited_with_the_writer_key(s: Scene) -> Expected:
    """a's version 2 said to be by someone else, every log table and tag made to agree, the link left as it
    was: the record's own chain tells."""
    second = doc(s, s.story.a, 2)
    second["meta"]["actor"] = "mallory"
    s.insider.set_state(s.story.a, 2, orjson.dumps(second))
    s.insider.recompute_log_tables(WRITER_KEY)
    return {("broken_link", s.story.a, 2)}


def version_gap_with_every_key(s: Scene) -> Expected:
    """a's version 2 removed and version 3 linked to version 1, every log table and tag made to agree: only the
    versions tell."""
    a = s.story.a
    third = relinked(s, a, doc(s, a, 3), 3, doc(s, a, 1)["hash"])
    s.insider.execute(
        f"DELETE FROM {s.insider.table('events')} WHERE originator_id = ? AND originator_version = 2",
        (s.insider.key(a),),
    )
    s.insider.set_state(a, 3, third)
    s.insider.recompute_log_tables(WRITER_KEY)
    return {("out_of_order", a, 3)}


def checkpoint_signed_by_a_key_it_carries(s: Scene) -> Expected:
    """A checkpoint of the true log (at the save before the last) signed by the insider's own key, which it
    carries: no trusted key signed it (stored in the table, and as a forged file handed to the auditor)."""
    forged = Signer(Ed25519PrivateKey.generate()).sign(*s.insider.save_before_last())
    backend = open_backend(s.database_url)
    database = backend.database()
    with database.transaction() as tx:
        CheckpointTable(backend).add(tx, forged)
    database.close()
    (s.tmp_path / "forged.jsonl").write_bytes(orjson.dumps(forged.to_dict()))
    return {("checkpoint", None, None)}


ROWS: dict[str, Callable[[Scene], Expected]] = {
    f.__name__: f
    for f in (
        rollback_by_an_insert_only_role,
        forged_append_with_the_master_key,
        snapshot_byte_flipped,
        snapshot_of_another_record,
        snapshot_of_an_older_version,
        snapshot_moved_past_the_last_event,
        snapshot_resealed_with_the_master_key,
        key_destroyed_without_a_purge,
        key_of_another_record,
        key_row_deleted,
        manifest_row_deleted,
        timestamps_backwards_with_every_key,
        decision_reused_on_its_record_with_every_key,
        decision_reused_by_another_command_with_every_key,
        decision_reused_in_the_next_save_with_the_writer_key,
        metadata_edited_with_the_writer_key,
        version_gap_with_every_key,
        checkpoint_signed_by_a_key_it_carries,
    )
}


@pytest.fixture
def scene(writ: Writ, database_url: str, tmp_path: Path) -> Iterator[Scene]:
    insider = Insider(database_url)
    yield Scene(writ, insider, history(writ), database_url, tmp_path)
    insider.close()


def in_ranges(scene: Scene, ranges: int, kept: Path) -> dict[str, Any]:
    """The report of a walk cut into ``ranges`` ranges, walked in turn in this process and settled in order."""
    signer = Signer(Ed25519PrivateKey.from_private_bytes(SEED))
    checkpoints = [Checkpoint.from_dict(orjson.loads(kept.read_bytes()))] if kept.exists() else []
    report = verify_store(
        open_backend(scene.database_url),
        public_keys={signer.key_id: signer.private.public_key()},
        checkpoints=checkpoints,
        workers=1,
        ranges=ranges,
    )
    return report.to_dict()


@pytest.mark.parametrize("row", list(ROWS))
def test_each_tampering_is_caught_and_named(scene: Scene, row: str) -> None:
    writ_command("checkpoint", env={"WRIT_DATABASE_URL": scene.database_url, **SIGNING})
    assert verify(scene)[0] == 0, "clean before"
    expected = ROWS[row](scene)
    kept = scene.tmp_path / "forged.jsonl"
    status, report = verify(scene, *(("--checkpoints", str(kept)) if kept.exists() else ()))
    assert (status, found(report)) == (1, expected), report["findings"]
    assert in_ranges(scene, 1, kept) == report, "the same store, the same keys: the same report"
    assert in_ranges(scene, 200, kept) == report, (
        "cut into a range per save or so, settled in order: the same"
    )


@pytest.mark.parametrize(
    "row",
    [
        "rollback_by_an_insert_only_role",
        "version_gap_with_every_key",
        "decision_reused_by_another_command_with_every_key",
    ],
)
def test_a_walk_shared_among_processes_reports_the_same(scene: Scene, row: str) -> None:
    ROWS[row](scene)
    # --jobs: the same option
    alone, shared = (
        verify(scene, "--workers", "1"),
        verify(scene, "--jobs", "2"),
    )
    assert shared == alone and alone[0] == 1


def test_a_swapped_snapshot_is_caught_on_a_host_with_no_key(scene: Scene) -> None:
    expected = snapshot_of_another_record(scene)
    status, report = verify(scene, "--public-key", PUBLIC, env=VERIFY_ONLY)
    assert (status, found(report)) == (1, expected), report["findings"]


def test_the_chain_rewritten_with_the_master_key_after_a_checkpoint_is_caught(scene: Scene) -> None:
    """After a checkpoint an auditor kept, a's last event is rewritten by someone holding the master key but not
    the writer key, consistently: sealed and digested as Writ would, every log table recomputed."""
    env = {"WRIT_DATABASE_URL": scene.database_url, **SIGNING}
    writ_command("checkpoint", env=env)
    kept = scene.tmp_path / "kept.jsonl"
    kept.write_text(writ_command("checkpoint", "export", env=env).stdout)
    a = scene.story.a
    scene.insider.set_state(a, 3, forged_patch(scene, a, 2, {"note": "forged"})[1])
    scene.insider.recompute_log_tables()
    status, report = verify(
        scene, "--checkpoints", str(kept), "--public-key", PUBLIC, env=VERIFY_ONLY
    )
    assert (status, found(report)) == (1, {("checkpoint", None, None)}), (
        "a host with no key: the checkpoint"
    )
    status, report = verify(scene, "--checkpoints", str(kept))
    assert (status, found(report)) == (1, {("checkpoint", None, None), ("unauthenticated", a, 3)})
    assert {
        f["message"].split(" was ")[-1][:14]
        for f in report["findings"]
        if f["kind"] == "checkpoint"
    } == {"rewritten sinc"}


def test_an_untouched_store_verifies_with_the_signing_key_and_with_the_public_key_alone(
    scene: Scene,
) -> None:
    writ_command("checkpoint", env={"WRIT_DATABASE_URL": scene.database_url, **SIGNING})
    status, report = verify(scene)
    assert (status, report["findings"], report["notes"]) == (0, [], [])
    assert (
        report["authenticated"] == report["saves"] > 0
        and report["snapshots"] >= 4
        and report["keys"] > 0
    )
    status, report = verify(scene, "--public-key", PUBLIC, env=VERIFY_ONLY)
    assert (status, report["findings"]) == (0, [])
    assert [note.split(":")[0] for note in report["notes"]] == [
        "the saves' tags were not checked",
        "snapshot contents and data keys were not checked",
    ]
    assert sorted(path.name for path in scene.tmp_path.glob("*-key")) == [], (
        "a verifying host makes no key"
    )
    refused = writ_command(
        "checkpoint",
        check=False,
        env={"WRIT_DATABASE_URL": scene.database_url, **SIGNING, "WRIT_WRITER_KEY": ""},
    )
    assert refused.returncode == 2 and refused.stderr.startswith(
        "error: CHECKPOINT_REFUSED: signing a checkpoint needs the writer key"
    ), refused.stderr


def test_a_log_that_does_not_verify_is_never_signed(scene: Scene) -> None:
    """``writ checkpoint`` verifies first: a tampered log gets no signed checkpoint to vouch for it."""
    ROWS["version_gap_with_every_key"](scene)
    refused = writ_command(
        "checkpoint", check=False, env={"WRIT_DATABASE_URL": scene.database_url, **SIGNING}
    )
    assert refused.returncode == 2 and refused.stderr.startswith(
        "error: CHECKPOINT_REFUSED: the log does not verify"
    ), refused.stderr
    status, report = verify(scene)
    assert (status, report["checkpoints"]) == (1, 0), "nothing was signed"
