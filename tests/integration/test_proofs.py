"""The log's Merkle proofs on both databases: every event of a 10,000-event log proved, matched against an
RFC 9162 tree the test builds itself from the stored rows (``tests.merkle_oracle``), and checked offline
with the public key alone; bit flips refused; a purge breaks no proof; gaps in positions; the stored tree
checked before a new root is signed; old checkpoints upgraded; witnesses."""

from __future__ import annotations

import base64
import hashlib
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from application.service import Writ
from domain.catalog import Catalog
from domain.errors import ChainBrokenError, ServiceUnavailableError
from entrypoints.bootstrap import Runtime
from entrypoints.log_access import event_position
from infrastructure import merkle_tiles
from infrastructure.backend import Backend
from infrastructure.backend_choice import open_backend
from infrastructure.checkpoints import CheckpointTable, Signer
from infrastructure.locks import lock_key
from infrastructure.log_notes import sign_tree
from infrastructure.log_proofs import LogProofs, NotCheckpointedError
from infrastructure.merkle import ProofError, root
from infrastructure.proof_check import check
from infrastructure.verification import CheckpointRefusedError, sign_head
from tests.catalogs import principal
from tests.conftest import PG_URL
from tests.merkle_oracle import Oracle
from tests.pg_roles import pg_role, runtime_grants
from tests.support import stored_rows, wait_until, writ_command

CLERK, MANAGER = principal("carol"), principal("maria", "acme", "manager")
SEED = b"s" * 32
SIGNER = Signer(Ed25519PrivateKey.from_private_bytes(SEED))
PUBLIC = SIGNER.public_raw
SIGNING = {"WRIT_SIGNING_KEY": base64.b64encode(SEED).decode()}
OFFLINE = {"WRIT_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing"}
"""``writ verify-proof`` runs with a database that cannot be reached: it must not need one."""


@pytest.fixture
def backend(database_url: str) -> Iterator[Backend]:
    opened = open_backend(database_url)
    yield opened
    opened.close()


@pytest.fixture
def runtime(catalog: Catalog, backend: Backend) -> Iterator[Runtime]:
    """The runtime the HTTP and CLI entry points hold: what ``event_position`` reads a record's position from."""
    opened = Runtime(catalog, backend)
    yield opened
    opened.close()


@pytest.fixture
def writ(runtime: Runtime) -> Writ:
    return runtime.writ


@pytest.fixture
def proofs(backend: Backend) -> Iterator[LogProofs]:
    opened = LogProofs(backend)
    yield opened
    opened.close()


def checkpoint(backend: Backend) -> int:
    """``writ checkpoint`` in this process: verify, sign the chain's head, then the tree; the signed size."""
    sign_head(backend, SIGNER)
    tree = sign_tree(backend, SIGNER)
    assert tree is not None
    return tree.tree_size


def oracle_of(database_url: str) -> tuple[Oracle, list[Any]]:
    """The test's own tree over the stored rows: 64-byte leaves packed here, from each row as stored."""
    rows = stored_rows(database_url)
    return Oracle(
        [
            struct.pack(">q", r.id)
            + r.originator_id.bytes
            + struct.pack(">q", r.originator_version)
            + hashlib.sha256(r.state).digest()
            for r in rows
        ]
    ), rows


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_every_event_of_a_10000_event_log_is_proved_and_checks_offline(
    writ: Writ, backend: Backend, proofs: LogProofs
) -> None:
    sizes = []
    for part in range(4):
        writ.create_many(
            CLERK, "Order", [{"sku": f"P-{part}-{n}", "total": "1"} for n in range(2500)]
        )
        sizes.append(checkpoint(backend))
    oracle, rows = oracle_of(writ_url(backend))
    assert sizes[-1] == len(rows) >= 10_000
    head = oracle.mth(0, len(rows))
    for index, row in enumerate(rows):
        proof = proofs.inclusion(row.id)
        assert proof["index"] == index and proof["tree_size"] == len(rows)
        assert proof["leaf"] == {
            "position": row.id,
            "record_id": str(row.originator_id),
            "version": row.originator_version,
            "event_hash": hashlib.sha256(row.state).hexdigest(),
        }
        assert proof["path"] == [b64(h) for h in oracle.path(index, 0, len(rows))]
        assert check(proof, PUBLIC).root == b64(head)
    for old in range(1, len(rows) + 1):
        proof = proofs.consistency(old)
        assert proof["old_root"] == b64(oracle.mth(0, old))
        assert proof["path"] == [b64(h) for h in oracle.proof(old, 0, len(rows))]
        assert (proof["old_checkpoint"] is not None) == (old in sizes)
        assert check(proof, PUBLIC).old_size == old
    for old in sizes:  # and between the signed trees themselves
        assert check(proofs.consistency(old, sizes[-1]), PUBLIC).tree_size == sizes[-1]
        assert check(proofs.inclusion(rows[old - 1].id, old), PUBLIC).index == old - 1


def writ_url(backend: Backend) -> str:
    config: Any = backend.config
    if hasattr(config, "path"):
        return f"sqlite:///{config.path}"
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={config.schema}"


def test_every_single_bit_change_to_a_stored_proof_is_refused(
    writ: Writ, backend: Backend, proofs: LogProofs
) -> None:
    made = writ.create_many(CLERK, "Order", [{"sku": f"B-{n}", "total": "1"} for n in range(300)])
    checkpoint(backend)
    proof = proofs.inclusion(made[123].position)
    assert check(proof, PUBLIC)
    for at, node in enumerate(proof["path"]):
        assert all(
            refused({**proof, "path": [*proof["path"][:at], flipped, *proof["path"][at + 1 :]]})
            for flipped in bit_flips(node)
        )
    leaf = proof["leaf"]
    for name, value in (("position", leaf["position"]), ("version", leaf["version"])):
        assert all(
            refused({**proof, "leaf": {**leaf, name: value ^ (1 << bit)}}) for bit in range(63)
        )
    record = bytes.fromhex(leaf["record_id"].replace("-", ""))
    for flipped in bit_flips(b64(record)):
        uuid = base64.b64decode(flipped).hex()
        assert refused({**proof, "leaf": {**leaf, "record_id": uuid}})
    for flipped in bit_flips(b64(bytes.fromhex(leaf["event_hash"]))):
        assert refused({**proof, "leaf": {**leaf, "event_hash": base64.b64decode(flipped).hex()}})
    text, _, line = proof["checkpoint"].partition("\n\n")
    origin, size, root = text.split("\n")
    assert all(
        refused({**proof, "checkpoint": f"{origin}\n{size}\n{flipped}\n\n{line}"})
        for flipped in bit_flips(root)
    )
    dash, name, signature = line.rstrip("\n").split(" ")
    assert all(
        refused({**proof, "checkpoint": f"{text}\n\n{dash} {name} {flipped}\n"})
        for flipped in bit_flips(signature)
    )


def bit_flips(encoded: str) -> Iterator[str]:
    data = base64.b64decode(encoded)
    for at in range(len(data)):
        for bit in range(8):
            yield b64(data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1 :])


def refused(proof: dict[str, Any]) -> bool:
    try:
        check(proof, PUBLIC)
    except ProofError:
        return True
    return False


def test_a_proof_from_before_a_purge_verifies_after_it(
    writ: Writ, runtime: Runtime, backend: Backend, proofs: LogProofs, tmp_path: Path
) -> None:
    order = writ.create(CLERK, "Order", {"sku": "GONE-1", "total": "10"})
    writ.patch(CLERK, "Order", order.id, {"note": "secret"})
    before = checkpoint(backend)
    kept = proofs.inclusion(event_position(runtime, MANAGER, "Order", order.id, 2))
    writ.purge(MANAGER, "Order", order.id)
    writ.create(CLERK, "Order", {"sku": "AFTER-1", "total": "1"})
    after = checkpoint(backend)
    assert after > before
    assert check(kept, PUBLIC).tree_size == before
    again = proofs.inclusion(event_position(runtime, MANAGER, "Order", order.id, 2))
    assert again["leaf"] == kept["leaf"] and check(again, PUBLIC).tree_size == after
    grown = proofs.consistency(before)
    assert check(grown, PUBLIC, kept_checkpoint=kept["checkpoint"]).old_size == before
    saved = tmp_path / "kept.json"
    saved.write_bytes(orjson.dumps(kept))
    done = writ_command(
        "verify-proof", str(saved), "--public-key", b64(PUBLIC), "--json", env=OFFLINE
    )
    assert orjson.loads(done.stdout)["ok"] is True


def test_an_event_past_the_checkpoint_waits_for_the_next_one(
    writ: Writ, backend: Backend, proofs: LogProofs
) -> None:
    with pytest.raises(NotCheckpointedError):
        proofs.checkpoint()
    first = writ.create(CLERK, "Order", {"sku": "W-1", "total": "1"})
    size = checkpoint(backend)
    late = writ.create(CLERK, "Order", {"sku": "W-2", "total": "1"})
    with pytest.raises(NotCheckpointedError, match="next `writ checkpoint`"):
        proofs.inclusion(late.position)
    assert proofs.inclusion(first.position)["tree_size"] == size
    assert sign_tree(backend, SIGNER) is None  # nothing new was verified and signed since
    checkpoint(backend)
    assert check(proofs.inclusion(late.position), PUBLIC).tree_size == size + 1
    with pytest.raises(NotCheckpointedError):  # not in the older tree it is asked against
        proofs.inclusion(late.position, size)


@pytest.mark.postgres
def test_the_runtime_role_serves_the_proofs(pg_schema: str, catalog: Catalog) -> None:
    """docs/operations.md's runtime role (SELECT and INSERT, no CREATE) answers the proofs: NOT_CHECKPOINTED before
    the first checkpoint (opening the proofs made the tree's tables, which that role may not: a permission
    error), then the checkpoint and an event's proof, read from the tables the first checkpoint made (the
    docs' grants give the role the owner's later tables too)."""
    owner = open_backend(f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={pg_schema}")
    with Runtime(catalog, owner) as runtime:
        made = runtime.writ.create(CLERK, "Order", {"sku": "R-1", "total": "1"})
        with pg_role(pg_schema, runtime_grants()) as (_, runtime_url):
            served = open_backend(runtime_url)
            proofs = LogProofs(served)
            try:
                with pytest.raises(NotCheckpointedError):
                    proofs.checkpoint()
                size = checkpoint(owner)
                assert proofs.checkpoint()["tree_size"] == size
                assert check(proofs.inclusion(made.position), PUBLIC).tree_size == size
            finally:
                proofs.close()
                served.close()
    owner.close()


def test_another_tenants_record_has_no_proof(
    writ: Writ, runtime: Runtime, backend: Backend
) -> None:
    theirs = writ.create(principal("olga", "globex"), "Order", {"sku": "T-1", "total": "1"})
    checkpoint(backend)
    from domain.errors import RecordNotFoundError

    with pytest.raises(RecordNotFoundError):
        event_position(runtime, CLERK, "Order", theirs.id, 1)
    with pytest.raises(RecordNotFoundError):
        event_position(runtime, principal("olga", "globex"), "Customer", theirs.id, 1)
    with pytest.raises(RecordNotFoundError):
        event_position(runtime, principal("olga", "globex"), "Order", theirs.id, 2)
    assert (
        event_position(runtime, principal("olga", "globex"), "Order", theirs.id, 1)
        == theirs.position
    )


def test_a_tampered_stored_tree_is_rebuilt_before_a_new_root_is_signed(
    writ: Writ, backend: Backend, proofs: LogProofs, database_url: str
) -> None:
    writ.create_many(CLERK, "Order", [{"sku": f"R-{n}", "total": "1"} for n in range(600)])
    first = checkpoint(backend)
    signed = proofs.checkpoint()
    tamper(
        database_url, "UPDATE {tiles} SET hashes = {m} WHERE tile_level = 1", (b64(b"\x00" * 64),)
    )
    writ.create_many(CLERK, "Order", [{"sku": f"S-{n}", "total": "1"} for n in range(10)])
    second = checkpoint(backend)
    oracle, rows = oracle_of(database_url)
    assert proofs.checkpoint()["root"] == b64(oracle.mth(0, second)) and second == len(rows)
    grown = proofs.consistency(first)
    assert check(grown, PUBLIC, kept_checkpoint=signed["checkpoint"]).old_size == first
    tamper(database_url, "DELETE FROM {tiles} WHERE tile_level = 0 AND tile_index = {m}", (1,))
    with pytest.raises(ServiceUnavailableError, match="rebuilds"):
        proofs.inclusion(rows[300].id)
    with pytest.raises(ServiceUnavailableError, match="rebuilds"):
        proofs.consistency(300)
    writ.create(CLERK, "Order", {"sku": "S-LAST", "total": "1"})
    checkpoint(backend)  # a missing tile: rebuilt
    assert check(proofs.inclusion(rows[300].id), PUBLIC).index == 300
    tamper(
        database_url,
        "UPDATE {tiles} SET hashes = {m} WHERE tile_level = 0 AND tile_index = 0",
        (b64(b"\x00" * 32 * 256),),
    )
    # a changed leaf hash: not what the manifest says
    with pytest.raises(ChainBrokenError, match="rebuild-tree"):
        proofs.inclusion(rows[5].id)
    writ.create(CLERK, "Order", {"sku": "S-MORE", "total": "1"})
    sign_head(backend, SIGNER)
    assert sign_tree(backend, SIGNER, rebuild=True) is not None
    assert check(proofs.inclusion(rows[5].id), PUBLIC).index == 5


def test_a_manifest_row_changed_after_signing_is_chain_broken(
    writ: Writ, backend: Backend, proofs: LogProofs, database_url: str
) -> None:
    made = writ.create(CLERK, "Order", {"sku": "M-1", "total": "1"})
    checkpoint(backend)
    assert check(proofs.inclusion(made.position), PUBLIC)
    tamper(
        database_url,
        "UPDATE {manifest} SET event_hash = {m} WHERE position = {m}",
        (b"\x07" * 32, made.position),
    )
    with pytest.raises(ChainBrokenError, match="and the stored tree disagree"):
        proofs.inclusion(made.position)


def test_a_tree_rewritten_under_its_signed_root_is_never_signed_again(
    writ: Writ, backend: Backend, database_url: str
) -> None:
    """Signing the tree checks its own past: a manifest row changed under the signed root, the tiles rebuilt
    from it no longer give that root, and nothing is signed, whatever head ``sign_tree`` is handed."""
    made = [writ.create(CLERK, "Order", {"sku": f"W-{n}", "total": "1"}) for n in range(4)]
    checkpoint(backend)
    tamper(
        database_url,
        "UPDATE {manifest} SET event_hash = {m} WHERE position = {m}",
        (b"\x07" * 32, made[1].position),
    )
    later = writ.create(CLERK, "Order", {"sku": "W-LAST", "total": "1"})
    database = backend.database()
    try:  # a head signed without the log's check (sign_head would refuse this log)
        with database.transaction() as tx:
            CheckpointTable(backend).add(tx, SIGNER.sign(later.position, bytes(32)))
    finally:
        database.close()
    with pytest.raises(CheckpointRefusedError, match="no longer has the root"):
        sign_tree(backend, SIGNER, rebuild=True)


def tamper(database_url: str, statement: str, params: tuple[Any, ...]) -> None:
    """Raw SQL as an insider (on PostgreSQL with the append-only triggers off for the session)."""
    if database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            conn.execute(
                statement.format(tiles="writ_merkle_tiles", manifest="writ_log_manifest", m="?"),
                params,
            )
        return
    base, _, schema = database_url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            statement.format(
                tiles=f'"{schema}".writ_merkle_tiles',
                manifest=f'"{schema}".writ_log_manifest',
                m="%s",
            ),
            params,
        )


def test_the_tree_grows_a_batch_per_transaction_and_stops_at_a_short_one(
    writ: Writ, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``extend`` (what ``writ checkpoint`` and a keeper run): full batches, then one short batch and no
    transaction after it to find nothing more; the tree it leaves is the test's own."""
    monkeypatch.setattr(merkle_tiles, "BATCH", 5)
    writ.create_many(CLERK, "Order", [{"sku": f"B-{n}", "total": "1"} for n in range(13)])
    oracle, rows = oracle_of(writ_url(backend))
    assert len(rows) % 5  # a short batch ends it
    database, tiles = backend.database(), merkle_tiles.TileTable(backend)
    transaction, opened = database.transaction, []

    def counted() -> Any:
        opened.append(1)
        return transaction()

    monkeypatch.setattr(database, "transaction", counted)
    try:
        with transaction() as tx:
            tiles.create(tx)
        assert merkle_tiles.extend(database, tiles, 2**62) == len(rows)
        assert len(opened) == len(rows) // 5 + 1
        assert merkle_tiles.extend(database, tiles, 2**62) == len(rows)  # nothing new: one look
        assert len(opened) == len(rows) // 5 + 2
        with database.reading() as tx:
            assert tiles.complete(tx)
            assert tiles.subtrees(tx).run(lambda read: root(read, len(rows))) == oracle.mth(
                0, len(rows)
            )
    finally:
        database.close()


@pytest.mark.postgres
def test_positions_that_gap_are_ranked(pg_schema: str, catalog: Any) -> None:
    """A rolled-back save leaves a gap in the notification ids (burned here from the sequence)."""
    from entrypoints.bootstrap import open_writ

    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={pg_schema}"
    writ = open_writ(catalog, url)
    backend = open_backend(url)
    try:
        for n in range(5):
            writ.create(CLERK, "Order", {"sku": f"G-{n}", "total": "1"})
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(
                    f"SELECT nextval(pg_get_serial_sequence('\"{pg_schema}\".writ_events', "
                    "'notification_id')) FROM generate_series(1, 7)"
                )
        size = checkpoint(backend)
        oracle, rows = oracle_of(url)
        assert size == len(rows) and rows[-1].id > len(rows) + 20
        proofs = LogProofs(backend)
        for index, row in enumerate(rows):
            proof = proofs.inclusion(row.id)
            assert proof["index"] == index and proof["path"] == [
                b64(h) for h in oracle.path(index, 0, size)
            ]
            check(proof, PUBLIC)
        proofs.close()
    finally:
        writ.close()
        backend.close()


def test_checkpoints_signed_before_the_merkle_log_keep_verifying_and_gain_a_note(
    writ: Writ, backend: Backend, database_url: str, tmp_path: Path
) -> None:
    """The upgrade: a log with ``writ.checkpoint/1`` rows only (signed before this version) is signed as a tree
    at its last checkpoint by the next ``writ checkpoint``, even with nothing new saved; a file of old checkpoints
    an auditor kept still verifies."""
    made = writ.create_many(CLERK, "Order", [{"sku": f"U-{n}", "total": "1"} for n in range(20)])
    old = sign_head(backend, SIGNER)  # what `writ checkpoint` did before the Merkle log
    assert old is not None
    env = {"WRIT_DATABASE_URL": database_url, **SIGNING}
    kept = tmp_path / "kept.jsonl"
    kept.write_text(orjson.dumps(old.to_dict()).decode() + "\n")
    signed = writ_command("checkpoint", env=env)
    assert f"signed tree size {len(stored_rows(database_url))}" in signed.stdout, (
        signed.stdout + signed.stderr
    )
    assert "nothing saved" in writ_command("checkpoint", env=env).stderr
    verified = writ_command(
        "verify", "--json", "--checkpoints", str(kept), "--public-key", b64(PUBLIC), env=env
    )
    assert orjson.loads(verified.stdout)["ok"] is True
    (line,) = [
        orjson.loads(text)
        for text in writ_command("checkpoint", "export", env=env).stdout.splitlines()
    ]
    assert (
        line["position"] == old.position
        and line["chain"] == old.chain
        and line["note"].startswith("writ/")
    )
    assert line["vkey"].startswith(line["note"].split("\n")[0] + "+")
    proof = tmp_path / "proof.json"
    proof.write_text(
        writ_command(
            "proof",
            "inclusion",
            "Order",
            str(made[0].id),
            "1",
            "-u",
            "ann",
            "-t",
            "acme",
            "-r",
            "clerk",
            "--catalog",
            str(catalog_path(tmp_path)),
            env=env,
        ).stdout
    )
    done = writ_command("verify-proof", str(proof), "--public-key", line["vkey"], env=OFFLINE)
    assert done.stdout.startswith("verified: leaf"), done.stdout


def catalog_path(tmp_path: Path) -> Path:
    from tests.catalogs import SHOP_CATALOG

    path = tmp_path / "writ.toml"
    path.write_text(SHOP_CATALOG)
    return path


def test_the_origin_is_kept_once_signed(
    writ: Writ, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from domain.errors import ConfigurationError

    monkeypatch.setenv("WRIT_LOG_ORIGIN", "shop.example/orders")
    writ.create(CLERK, "Order", {"sku": "O-1", "total": "1"})
    checkpoint(backend)
    writ.create(CLERK, "Order", {"sku": "O-2", "total": "1"})
    monkeypatch.setenv("WRIT_LOG_ORIGIN", "shop.example/other")
    sign_head(backend, SIGNER)
    with pytest.raises(ConfigurationError, match=r"shop\.example/orders"):
        sign_tree(backend, SIGNER)
    monkeypatch.delenv("WRIT_LOG_ORIGIN")
    tree = sign_tree(backend, SIGNER)
    assert tree is not None and tree.origin == "shop.example/orders"


def test_signing_the_tree_makes_its_tables_under_the_schema_creation_lock(
    catalog: Catalog, pg_schema: str
) -> None:
    """``writ checkpoint`` creates its note and tile tables (``IF NOT EXISTS``) while another command may be
    creating them too: it takes the schema-creation lock first, so the two never collide on PostgreSQL (they
    did: ``UniqueViolation`` on ``pg_type``, and ``writ checkpoint --every`` exited). Held elsewhere, the lock
    makes the signing wait."""
    backend = open_backend(f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={pg_schema}")
    runtime = Runtime(catalog, backend)
    try:
        runtime.writ.create(CLERK, "Order", {"sku": "A", "total": "1"})
        checkpoint(backend)  # every table made, outside the lock held below
        runtime.writ.create(CLERK, "Order", {"sku": "B", "total": "2"})
        sign_head(backend, SIGNER)
        signed: list[Any] = []
        with psycopg.connect(PG_URL, autocommit=True) as holder:
            key = lock_key(pg_schema, "schema-creation")
            holder.execute("SELECT pg_advisory_lock(%s)", (key,))
            signing = threading.Thread(target=lambda: signed.append(sign_tree(backend, SIGNER)))
            signing.start()

            def waiting() -> bool:
                row = holder.execute(  # a wait on this very lock (its key in two 32-bit halves)
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND classid::bigint = %s AND objid::bigint = %s",
                    ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
                ).fetchone()
                return bool(row and row[0])

            wait_until(
                lambda: waiting() or not signing.is_alive(), 30, "the signing to wait or end"
            )
            assert signing.is_alive() and waiting(), "the tree was signed without the lock"
        signing.join(timeout=30)
        assert signed and signed[0] is not None and signed[0].tree_size == 2
    finally:
        runtime.close()
        backend.close()
