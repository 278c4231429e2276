"""The Merkle tree's proofs against an RFC 9162 implementation written here, sharing nothing with Writ's:
a plain recursive MTH, PATH and PROOF (section 2.1), the RFC 6962 reference roots, and every bit flip refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
from uuid import UUID

import pytest

from infrastructure.merkle import (
    ProofError,
    consistency_path,
    inclusion_path,
    leaf_hash,
    leaf_input,
    root,
    root_from_inclusion,
    verify_consistency,
)
from tests.merkle_oracle import Oracle

REFERENCE_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
REFERENCE_ROOTS = [  # RFC 6962's reference tree heads for sizes 1..8 (the Certificate Transparency test data)
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_the_roots_are_rfc_6962s_reference_roots() -> None:
    oracle = Oracle(REFERENCE_LEAVES)
    assert [oracle.mth(0, n).hex() for n in range(1, 9)] == REFERENCE_ROOTS
    assert [root(oracle.subtrees, n).hex() for n in range(1, 9)] == REFERENCE_ROOTS
    assert leaf_hash(b"").hex() == REFERENCE_ROOTS[0]


@pytest.mark.parametrize("size", [*range(1, 70), 255, 256, 257, 1000, 1023, 1025])
def test_every_inclusion_and_consistency_proof_is_the_rfcs_and_verifies(size: int) -> None:
    oracle = Oracle([struct.pack(">q", n) for n in range(size)])
    head = oracle.mth(0, size)
    for index in range(size):
        path = inclusion_path(oracle.subtrees, index, size)
        assert path == oracle.path(index, 0, size)
        assert root_from_inclusion(oracle.hashes[index], index, size, path) == head
    for old in range(1, size + 1):
        proof = consistency_path(oracle.subtrees, old, size)
        assert proof == oracle.proof(old, 0, size)
        verify_consistency(old, oracle.mth(0, old), size, head, proof)


def flipped(data: bytes) -> list[bytes]:
    return [
        bytes(b ^ (1 << bit) if i == at else b for i, b in enumerate(data))
        for at in range(len(data))
        for bit in range(8)
    ]


@pytest.mark.parametrize(
    ("index", "size"), [(0, 1), (5, 8), (6, 7), (12, 13), (999, 1000), (300, 1000)]
)
def test_every_single_bit_change_to_an_inclusion_proof_is_refused(index: int, size: int) -> None:
    oracle = Oracle([struct.pack(">q", n) for n in range(size)])
    head, path = oracle.mth(0, size), oracle.path(index, 0, size)
    for at, sibling in enumerate(path):
        for changed in flipped(sibling):
            assert (
                root_from_inclusion(
                    oracle.hashes[index], index, size, [*path[:at], changed, *path[at + 1 :]]
                )
                != head
            )
    for changed in flipped(oracle.hashes[index]):
        assert root_from_inclusion(changed, index, size, path) != head
    # (the tree size is the signed checkpoint's: test_proof_check flips it there)
    for bit in range(64):
        with contextlib.suppress(ProofError):
            assert root_from_inclusion(oracle.hashes[index], index ^ (1 << bit), size, path) != head


@pytest.mark.parametrize(
    ("old", "size"), [(1, 2), (3, 7), (4, 8), (6, 8), (255, 1000), (512, 1000)]
)
def test_every_single_bit_change_to_a_consistency_proof_or_root_is_refused(
    old: int, size: int
) -> None:
    oracle = Oracle([struct.pack(">q", n) for n in range(size)])
    old_root, head, proof = oracle.mth(0, old), oracle.mth(0, size), oracle.proof(old, 0, size)
    verify_consistency(old, old_root, size, head, proof)
    for at, node in enumerate(proof):
        for changed in flipped(node):
            with pytest.raises(ProofError):
                verify_consistency(
                    old, old_root, size, head, [*proof[:at], changed, *proof[at + 1 :]]
                )
    for changed in flipped(old_root):
        with pytest.raises(ProofError):
            verify_consistency(old, changed, size, head, proof)
    for changed in flipped(head):
        with pytest.raises(ProofError):
            verify_consistency(old, old_root, size, changed, proof)


def test_a_proof_of_another_shape_is_refused() -> None:
    oracle = Oracle([struct.pack(">q", n) for n in range(10)])
    path = oracle.path(3, 0, 10)
    for bad in (path[:-1], [*path, path[0]], [p[:31] for p in path]):
        with pytest.raises(ProofError):
            root_from_inclusion(oracle.hashes[3], 3, 10, bad)
    for old in (4, 3):  # an old size that is a power of two, and one that is not
        with pytest.raises(ProofError):
            verify_consistency(old, oracle.mth(0, old), 10, oracle.mth(0, 10), [])
    with pytest.raises(ProofError):
        root_from_inclusion(oracle.hashes[3], 10, 10, path)
    with pytest.raises(ProofError):  # a proof to a smaller tree's root, claimed for a larger tree
        verify_consistency(2, oracle.mth(0, 2), 8, oracle.mth(0, 4), oracle.proof(2, 0, 4))
    with pytest.raises(ProofError):
        root_from_inclusion(oracle.hashes[1], 1, 8, oracle.path(1, 0, 4))
    whole = oracle.mth(0, 10)
    for old in (11, -1, 0):  # no tree of that size is a prefix of the ten leaves
        with pytest.raises(ProofError):
            verify_consistency(old, whole, 10, whole, oracle.proof(4, 0, 10))
    with pytest.raises(ProofError):  # equal sizes: nothing to prove, so nothing on the path
        verify_consistency(10, whole, 10, whole, [whole])


def test_the_leaf_encoding_is_64_bytes_position_record_version_hash() -> None:
    record = UUID("0123456789abcdef0123456789abcdef")
    hashed = hashlib.sha256(b"stored bytes").digest()
    expected = struct.pack(">q", 7) + record.bytes + struct.pack(">q", 3) + hashed
    assert leaf_input(7, record, 3, hashed) == expected and len(expected) == 64
    assert leaf_hash(expected) == hashlib.sha256(b"\x00" + expected).digest()
    for wrong in (hashed[:31], hashed + b"\x00"):
        with pytest.raises(ProofError):
            leaf_input(7, record, 3, wrong)
