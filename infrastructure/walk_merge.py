"""Settling the ranges of a parallel ``writ verify`` walk in log order (see ``infrastructure.log_walk``).

Each range's walk hands back its findings and counts, the records it met, each
save's digest and each decision id's first and last save in it. Here, range by
range: the counts add up, the records are counted once, the saves' digests come
back in log order (for the log chain), and a decision id met again in a save
that does not follow the last save it was in is reported, as a single walk
would.
"""

from __future__ import annotations

from collections.abc import Iterable

from infrastructure.log_walk import Walked
from infrastructure.record_checks import reused
from infrastructure.verify_report import Report


def merge(walks: Iterable[Walked], report: Report) -> tuple[list[tuple[int, bytes]], list[int]]:
    """Add every range's findings and counts to ``report``; the saves' (last position, digest) in log order,
    and the aggregates whose first event seals data."""
    records: set[int] = set()
    last_save: dict[str, int] = {}
    digests: list[tuple[int, bytes]] = []
    sealing: list[int] = []
    offset = 0
    for walked in sorted(walks, key=lambda w: w.index):
        report.findings += walked.findings
        report.events += walked.events
        report.saves += walked.saves
        report.unattested += walked.unattested
        report.authenticated += walked.authenticated
        report.untagged += walked.untagged
        records.update(walked.records)
        for decision, (first, last, record, version, position) in walked.decisions.items():
            before = last_save.get(decision)
            if before is not None and before < offset + first - 1:
                report.findings.append(reused(decision, record, version, position))
            last_save[decision] = offset + last
        digests += walked.digests
        sealing += walked.sealing
        offset += walked.saves
    report.records = len(records)
    return digests, sealing
