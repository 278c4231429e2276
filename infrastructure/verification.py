"""``verify``: is the stored history what was written, by Writ?

Reads the whole log once, in position order, and checks from the events
themselves (``infrastructure.log_walk``):

* **the manifest** (``infrastructure.log_chain``): every event listed is there
  with the same bytes, and every event is listed; an event missing is reported
  with the record and version the manifest names, one changed or swapped is
  ``altered``, one no save lists is ``inserted``;
* **the log chain**: each save's chain recomputed from its events matches the
  stored one, and at every signed checkpoint the chain recomputed from the
  first event on matches the signed value (nothing before it was rewritten,
  even consistently, by someone who cannot sign);
* **the tags**: each save's tag checks under the writer key
  (``infrastructure.writer_keys``), so no event was appended, altered or
  replayed by someone without it, however thoroughly they recomputed the rest;
* **each record's own chain**: versions follow one another, every event's hash
  links to the one before (``domain.chain``), no event is dated before the one
  before it, and a decision id is one command's.

Then the snapshots (``infrastructure.snapshot_checks``) and the key table
(``infrastructure.key_checks``). A long log is cut at save boundaries into
ranges walked by worker processes (forked: each reads its own range, and picks
each record up from its last event before the range), while this process
checks the snapshots and the key table; ``infrastructure.walk_merge`` adds
the ranges up in order, so the report is the one a single walk makes.

Purges destroy keys, never events: a purged record still verifies. Events
written before the manifest existed are counted as ``unattested`` and saves
made before writer keys as ``untagged``, not broken. What this host cannot
check (no writer key: the tags; no master key: snapshot contents and keys; no
public key: checkpoint signatures) is said in the report's notes.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from domain.errors import WritError
from infrastructure.checkpoints import Checkpoint, CheckpointTable, Signer
from infrastructure.key_checks import KeyCheck
from infrastructure.log import open_log_of
from infrastructure.log_chain import CHAIN, GENESIS, next_chain
from infrastructure.log_walk import BATCH, Plan, RangeWalk, Span, Walked, collector_paused
from infrastructure.master_keys import configured_master_keys
from infrastructure.snapshot_checks import check_snapshots
from infrastructure.sql import SQL, P
from infrastructure.vault import Vault
from infrastructure.verify_report import Finding, Report
from infrastructure.walk_merge import merge
from infrastructure.writer_keys import load_writer_keys

if TYPE_CHECKING:
    from infrastructure.backend import Backend
    from infrastructure.database import Database, Tx

__all__ = ["BATCH", "CheckpointRefusedError", "Finding", "Report", "sign_head", "verify"]

PARALLEL_FROM = 20_000
"""Positions from which the walk is shared among worker processes (below, starting them costs more)."""
MAX_WORKERS = 4


class Verifier:
    def __init__(
        self,
        backend: Backend,
        *,
        public_keys: dict[str, Ed25519PublicKey] | None = None,
        checkpoints: Sequence[Checkpoint] = (),
        workers: int | None = None,
        ranges: int | None = None,
    ) -> None:
        self.backend = backend
        self.public_keys = dict(public_keys or {})
        self.extra_checkpoints = list(checkpoints)
        self.workers = workers
        """Processes that walk the log (None: the CPU count, up to ``MAX_WORKERS``, from ``PARALLEL_FROM``
        positions; 1: this process alone)."""
        self.ranges = ranges
        """Ranges the log is cut into (None: one per worker; more than workers: walked in turn)."""
        beside = backend.master_key_beside()
        self.writer_keys = load_writer_keys(beside=beside, create=False)
        self.masters = configured_master_keys(beside=beside)

    def run(self) -> Report:
        report = Report()
        database = self.backend.database()
        try:
            # no key made
            log = open_log_of(self.backend, sealed=False, create_tables=not self._made(database))
        except BaseException:
            database.close()
            raise
        try:
            with collector_paused():
                with database.reading() as tx:
                    stored = self._checkpoints(tx)
                    plan, spans = self._plan(tx, report)
                keys = KeyCheck()
                walks = self._walk(plan, spans, database, log, report, keys)
                digests, sealing = merge(walks, report)
                keys.check_sealed(sealing, report)
                chains = self._chains(
                    digests, {c.position for c in [*stored, *self.extra_checkpoints]}, report
                )
                self._check_tail(log, database, report)
                self._check_checkpoints([*stored, *self.extra_checkpoints], chains, report)
                self._notes(report)
                report.sort()
        finally:
            database.close()
            log.close()
        return report

    def _made(self, database: Database) -> bool:
        """Whether the store's tables are there as this version makes them (then the log is opened without
        making them: on PostgreSQL, some ninety statements, as long as the rest of a short verification)."""
        with database.reading() as tx:
            return {"mac", "writer_key"} <= self.backend.existing_columns(tx, CHAIN)

    # -- planning -------------------------------------------------------------------

    def _plan(self, tx: Tx, report: Report) -> tuple[Plan, list[Span]]:
        """What every range is told, and the ranges: cut at the saves nearest equal shares of the positions."""
        chain = self.backend.table(CHAIN)
        head, first_saved, first_tagged = tx.one(
            SQL(
                "SELECT MAX(last), (SELECT first FROM {} ORDER BY last LIMIT 1), "
                "(SELECT MIN(last) FROM {} WHERE mac IS NOT NULL) FROM {}"
            ).format(chain, chain, chain)
        ) or (None, None, None)
        report.head = int(head or 0)
        plan = Plan(
            None if first_saved is None else int(first_saved),
            None if first_tagged is None else int(first_tagged),
            self.writer_keys,
            self.masters,
        )
        if not report.head:
            return plan, [Span(0, 0, None, GENESIS)]
        count = self.ranges or self._workers(report.head)
        cuts: list[tuple[int, bytes]] = [(0, GENESIS)]
        for share in range(1, count):
            row = tx.one(
                SQL("SELECT last, chain FROM {} WHERE last >= {} ORDER BY last LIMIT 1").format(
                    chain, P
                ),
                [report.head * share // count],
            )
            if row is not None and int(row[0]) > cuts[-1][0] and int(row[0]) < report.head:
                cuts.append((int(row[0]), bytes(row[1])))
        ends = [cut[0] for cut in cuts[1:]] + [report.head]
        return plan, [
            Span(index, after, until, chain_before)
            for index, ((after, chain_before), until) in enumerate(zip(cuts, ends, strict=True))
        ]

    def _workers(self, head: int) -> int:
        if self.workers is not None:
            return max(1, self.workers)
        if head < PARALLEL_FROM or "fork" not in multiprocessing.get_all_start_methods():
            return 1
        return min(os.cpu_count() or 1, MAX_WORKERS)

    # -- walking --------------------------------------------------------------------

    def _walk(
        self,
        plan: Plan,
        spans: list[Span],
        database: Database,
        log: Any,
        report: Report,
        keys: KeyCheck,
    ) -> list[Walked]:
        """Every range walked (in forked workers when more than one, each on connections of its own) while this
        process checks the snapshots and the key table."""
        workers = min(len(spans), self._workers(report.head))
        if workers == 1:
            walked = [
                walk_range(self.backend, plan, span, log=log, database=database) for span in spans
            ]
            self._stored_checks(database, log, report, keys)
            return walked
        # a worker needs what this process holds, and starts at once
        context = multiprocessing.get_context("fork")
        gc.freeze()  # a worker's collector then leaves this process's objects (and their pages) alone
        try:
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                futures: list[Future[Walked]] = [
                    pool.submit(_worker_walk, type(self.backend), self.backend.config, plan, span)
                    for span in spans
                ]
                self._stored_checks(database, log, report, keys)
                return [future.result() for future in futures]
        finally:
            gc.unfreeze()

    def _stored_checks(self, database: Database, log: Any, report: Report, keys: KeyCheck) -> None:
        vault = None if self.masters is None else Vault(self.masters, self.backend.key_table())
        try:
            if vault is not None:
                log.mapper.vault = vault
            check_snapshots(self.backend, database, log, vault, report)
            keys.check(log, self.masters, report)
        finally:
            if vault is not None:
                vault.close()

    def _chains(
        self, digests: Iterable[tuple[int, bytes]], wanted: set[int], report: Report
    ) -> dict[int, bytes]:
        """The log chain recomputed from the saves' events, at each wanted position and at the head."""
        chains: dict[int, bytes] = {}
        recomputed = GENESIS
        for last, digest in digests:
            recomputed = next_chain(recomputed, digest)
            if last in wanted:
                chains[last] = recomputed
        report.chain = recomputed.hex()
        return chains

    def _check_tail(self, log: Any, database: Database, report: Report) -> None:
        """Events past the head the walk stopped at are saves committed since, and every save commits its chain
        row with its events: so an event there that no chain row read after it covers was put there by hand."""
        if report.head == 0:  # no save was ever chained: the walk read the whole log, unattested
            return
        tail = log.rows(report.head, None, BATCH)
        if not tail:
            return
        with database.reading() as tx:
            saves = tx.query(
                SQL("SELECT first, last FROM {} WHERE last > {}").format(
                    self.backend.table(CHAIN), P
                ),
                [report.head],
            )
        covered = sorted((int(first), int(last)) for first, last in saves)
        for position, record, version, _, _ in tail:
            if not any(first <= position <= last for first, last in covered):
                report.findings.append(
                    Finding(
                        "inserted",
                        f"{record} version {version} at position {position} "
                        "was never written by Writ",
                        str(record),
                        version,
                        position,
                    )
                )

    # -- checkpoints ----------------------------------------------------------------

    def _checkpoints(self, tx: Tx) -> list[Checkpoint]:
        # verify makes no table: a role that may only read the store runs it
        return CheckpointTable(self.backend).kept(tx)

    def _check_checkpoints(
        self, checkpoints: Iterable[Checkpoint], chains: dict[int, bytes], report: Report
    ) -> None:
        """Each checkpoint signed by a trusted key (only the keys given: never one a checkpoint carries) and
        matched by the log; with no key given at all, the signatures are left unchecked (and noted)."""
        for checkpoint in checkpoints:
            report.checkpoints += 1
            if self.public_keys and not checkpoint.verified_by(self.public_keys):
                report.findings.append(
                    Finding(
                        "checkpoint",
                        f"the checkpoint at position {checkpoint.position} "
                        f"is not signed by a known key ({checkpoint.key_id})",
                        position=checkpoint.position,
                    )
                )
            elif chains.get(checkpoint.position, b"").hex() != checkpoint.chain:
                report.findings.append(
                    Finding(
                        "checkpoint",
                        f"the log up to position {checkpoint.position} was "
                        f"rewritten since its checkpoint signed at {checkpoint.signed_at}",
                        position=checkpoint.position,
                    )
                )

    def _notes(self, report: Report) -> None:
        if self.writer_keys is None and report.saves > report.untagged:
            report.notes.append(
                "the saves' tags were not checked: no writer key here (WRIT_WRITER_KEY or "
                "WRIT_WRITER_KEY_FILE)"
            )
        if self.masters is None:
            report.notes.append(
                "snapshot contents and data keys were not checked: no master key here "
                "(WRIT_MASTER_KEY or WRIT_MASTER_KEY_FILE)"
            )
        if report.checkpoints and not self.public_keys:
            report.notes.append(
                "checkpoint signatures were not checked: no public key given (--public-key)"
            )

    @property
    def tags_checked(self) -> bool:
        return self.writer_keys is not None


def walk_range(
    backend: Backend, plan: Plan, span: Span, *, log: Any = None, database: Database | None = None
) -> Walked:
    """One range walked (in a worker process: on connections of its own, which it closes)."""
    own = log is None
    log = open_log_of(backend, sealed=False, create_tables=False) if own else log
    database = backend.database() if database is None else database
    try:
        return RangeWalk(backend, log, database, plan, span).run()
    finally:
        if own:
            database.close()
            log.factory.close()  # not the backend: in a forked worker it holds the parent's connections


def _worker_walk(kind: type[Backend], config: Any, plan: Plan, span: Span) -> Walked:
    return walk_range(kind(config), plan, span)


def verify(backend: Backend, **options: Any) -> Report:
    """Check the whole store (see the module's docstring)."""
    return Verifier(backend, **options).run()


def sign_head(backend: Backend, signer: Signer) -> Checkpoint | None:
    """Verify the whole log, then sign its head and store the checkpoint; None when nothing was saved since
    the last one. Refuses (``CHECKPOINT_REFUSED``) to sign a log that does not verify, or whose saves' tags
    cannot be checked here (no writer key)."""
    verifier = Verifier(backend, public_keys={signer.key_id: signer.private.public_key()})
    report = verifier.run()
    if not report.ok:
        first = report.findings[0]
        raise CheckpointRefusedError(
            f"the log does not verify ({len(report.findings)} findings, first: "
            f"{first.message}); investigate with `writ verify` before signing"
        )
    if not verifier.tags_checked and report.saves > report.untagged:
        raise CheckpointRefusedError(
            "signing a checkpoint needs the writer key (WRIT_WRITER_KEY or "
            "WRIT_WRITER_KEY_FILE), to check the saves' tags first"
        )
    database = backend.database()
    try:
        with backend.table_creation(), database.transaction() as tx:
            table = CheckpointTable(backend)
            table.create(tx)
            latest = max((c.position for c in table.all(tx)), default=0)
            if report.head <= latest:
                return None
            checkpoint = signer.sign(report.head, bytes.fromhex(report.chain))
            table.add(tx, checkpoint)
    finally:
        database.close()
    return checkpoint


class CheckpointRefusedError(WritError):
    code = "CHECKPOINT_REFUSED"
