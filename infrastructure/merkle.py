"""The log's Merkle tree, RFC 9162 section 2.1: leaves, proofs and their verification, with no database.

**Leaves.** One leaf per stored event, in log (position) order: leaf index ``i`` is the event's rank among
the manifest's positions (positions can gap where a transaction rolled back; ranks cannot). The leaf input
is 64 bytes, the very entry a save's log-chain digest covers (``infrastructure.log_chain``)::

    position (8 bytes, big-endian, signed) || record id (16 bytes, the UUID's bytes)
    || version (8 bytes, big-endian, signed) || SHA-256 of the event's stored bytes (32 bytes)

The stored bytes are the ciphertext of sealed data, so a purge (which destroys the record's key, never
its events) changes no leaf and breaks no proof.

**Hashing.** ``leaf hash = SHA-256(0x00 || leaf input)``, ``node hash = SHA-256(0x01 || left || right)``;
the tree over ``n`` leaves splits at ``k``, the largest power of two below ``n``. The proofs are RFC 9162's
``PATH`` (inclusion) and ``PROOF`` (consistency), built from a ``Subtrees`` source: the hash of a perfect
subtree at ``(level, index)`` (the ``2**level`` leaves from ``index * 2**level``), which the tile table
(``infrastructure.merkle_tiles``) answers from stored nodes, so a proof costs O(log n) reads. The
verifiers are RFC 9162's algorithms (2.1.3.2, 2.1.4.2), written from the text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from uuid import UUID

HASH_BYTES = 32
LEAF_BYTES = 64
Subtrees = Callable[[int, int], bytes]
"""``(level, index) -> hash`` of the perfect subtree over leaves ``[index << level, (index + 1) << level)``."""


class ProofError(ValueError):
    """A proof that does not check: wrong shape, or a recomputed root that differs."""


def leaf_input(position: int, record_id: UUID, version: int, event_hash: bytes) -> bytes:
    if len(event_hash) != HASH_BYTES:
        raise ProofError("an event hash is 32 bytes")
    return (
        position.to_bytes(8, "big", signed=True)
        + record_id.bytes
        + version.to_bytes(8, "big", signed=True)
        + event_hash
    )


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(size: int) -> int:
    """The largest power of two strictly below ``size`` (``size`` > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def fold(hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree given its ``2**r`` bottom hashes."""
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def range_hash(subtrees: Subtrees, start: int, end: int) -> bytes:
    """MTH of leaves ``[start, end)``, ``start`` aligned as RFC 9162's split leaves it: a perfect subtree is
    read, anything else splits at its largest power of two (so at most one read per level)."""
    size = end - start
    if size <= 0:
        raise ProofError("an empty range has no hash here")
    if size & (size - 1) == 0:
        level = size.bit_length() - 1
        return subtrees(level, start >> level)
    k = split(size)
    return node_hash(range_hash(subtrees, start, start + k), range_hash(subtrees, start + k, end))


def root(subtrees: Subtrees, size: int) -> bytes:
    """The root of the tree of ``size`` leaves (``size`` >= 1; RFC 9162's empty tree is not signed here)."""
    return range_hash(subtrees, 0, size)


def inclusion_path(subtrees: Subtrees, index: int, size: int) -> list[bytes]:
    """RFC 9162 ``PATH(index, D[size])``: the sibling hashes from the leaf up to the root."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split(end - start)
        if index < start + k:
            path.append(range_hash(subtrees, start + k, end))
            end = start + k
        else:
            path.append(range_hash(subtrees, start, start + k))
            start += k
    return path[::-1]


def consistency_path(subtrees: Subtrees, old_size: int, size: int) -> list[bytes]:
    """RFC 9162 ``PROOF(old_size, D[size])`` (empty when the sizes are equal)."""
    if not 0 < old_size <= size:
        raise ProofError(f"no consistency proof from {old_size} leaves to {size}")
    proof: list[bytes] = []
    start, end, m, whole = 0, size, old_size, True
    while m != end - start:
        k = split(end - start)
        if m <= k:
            proof.append(range_hash(subtrees, start + k, end))
            end = start + k
        else:
            proof.append(range_hash(subtrees, start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        proof.append(range_hash(subtrees, start, end))
    return proof[::-1]


def root_from_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2: the root that ``path`` leads to from leaf hash ``leaf`` at ``index``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below the tree size {size}")
    fn, sn, hashed = index, size - 1, leaf
    for sibling in path:
        _check_hash(sibling)
        if sn == 0:
            raise ProofError("the inclusion path is longer than the tree is high")
        if fn & 1 or fn == sn:
            hashed = node_hash(sibling, hashed)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            hashed = node_hash(hashed, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the inclusion path is shorter than the tree is high")
    return hashed


def verify_consistency(
    old_size: int, old_root: bytes, size: int, new_root: bytes, path: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2: raise ``ProofError`` unless ``path`` shows the tree of ``old_size`` leaves with
    ``old_root`` is a prefix of the tree of ``size`` leaves with ``new_root``."""
    if not 0 < old_size <= size:
        raise ProofError(f"no consistency from {old_size} leaves to {size}")
    if old_size == size:
        if path or old_root != new_root:
            raise ProofError("equal sizes need an empty proof and equal roots")
        return
    if not path:
        raise ProofError("an empty consistency proof")
    hashes = [old_root, *path] if old_size & (old_size - 1) == 0 else list(path)
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    _check_hash(hashes[0])
    fr = sr = hashes[0]
    for c in hashes[1:]:
        _check_hash(c)
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise ProofError("the consistency proof does not lead to both roots")


def _check_hash(value: bytes) -> None:
    if len(value) != HASH_BYTES:
        raise ProofError("every hash in a proof is 32 bytes")
