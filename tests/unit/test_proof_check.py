"""The offline verifier (``writ verify-proof``'s) on proofs and signed notes built here by hand, from the
C2SP and RFC texts (hashlib and Ed25519 directly, not Writ's note code): what verifies, and every single-bit
change to a proof, leaf, root or signature, a wrong key and a key the proof brings along, refused."""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from typing import Any
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from infrastructure.merkle import ProofError
from infrastructure.notes import NoteKey
from infrastructure.proof_check import check, log_key
from tests.merkle_oracle import Oracle

ORIGIN = "shop.example/writ"
LOG = Ed25519PrivateKey.from_private_bytes(b"L" * 32)
WITNESS = Ed25519PrivateKey.from_private_bytes(b"W" * 32)
MALLORY = Ed25519PrivateKey.from_private_bytes(b"M" * 32)
SIZE = 1000
RECORD = UUID("6f1c2d3e-4b5a-4978-8a1b-2c3d4e5f6a7b")


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_hash(name: str, kind: int, key: Ed25519PrivateKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + raw(key)).digest()[:4]


def vkey(name: str, kind: int, key: Ed25519PrivateKey) -> str:
    return f"{name}+{key_hash(name, kind, key).hex()}+{base64.b64encode(bytes([kind]) + raw(key)).decode()}"


def signed_note(
    text: str, key: Ed25519PrivateKey = LOG, name: str = ORIGIN, witness: bool = False
) -> str:
    lines = f"\u2014 {name} {base64.b64encode(key_hash(name, 1, key) + key.sign(text.encode())).decode()}\n"
    if witness:
        stamp = int(time.time())
        message = f"cosignature/v1\ntime {stamp}\n{text}".encode()
        cosig = (
            key_hash("witness.example/w1", 4, WITNESS)
            + struct.pack(">Q", stamp)
            + WITNESS.sign(message)
        )
        lines += f"\u2014 witness.example/w1 {base64.b64encode(cosig).decode()}\n"
    return f"{text}\n{lines}"


def leaf(n: int) -> bytes:
    return (
        struct.pack(">q", 10 + 2 * n)
        + RECORD.bytes
        + struct.pack(">q", n + 1)
        + hashlib.sha256(b"%d" % n).digest()
    )


ORACLE = Oracle([leaf(n) for n in range(SIZE)])


def checkpoint(size: int, **options: Any) -> str:
    return signed_note(
        f"{ORIGIN}\n{size}\n{base64.b64encode(ORACLE.mth(0, size)).decode()}\n", **options
    )


def inclusion(index: int, **options: Any) -> dict[str, Any]:
    data = leaf(index)
    return {
        "schema": "writ.proof/1",
        "kind": "inclusion",
        "leaf": {
            "position": struct.unpack(">q", data[:8])[0],
            "record_id": str(UUID(bytes=data[8:24])),
            "version": struct.unpack(">q", data[24:32])[0],
            "event_hash": data[32:].hex(),
        },
        "index": index,
        "tree_size": SIZE,
        "path": [base64.b64encode(h).decode() for h in ORACLE.path(index, 0, SIZE)],
        "checkpoint": checkpoint(SIZE, **options),
    }


def consistency(old: int) -> dict[str, Any]:
    return {
        "schema": "writ.proof/1",
        "kind": "consistency",
        "old_size": old,
        "old_root": base64.b64encode(ORACLE.mth(0, old)).decode(),
        "old_checkpoint": checkpoint(old),
        "tree_size": SIZE,
        "path": [base64.b64encode(h).decode() for h in ORACLE.proof(old, 0, SIZE)],
        "checkpoint": checkpoint(SIZE),
    }


def flips(data: bytes) -> list[bytes]:
    return [
        bytes(b ^ (1 << bit) if i == at else b for i, b in enumerate(data))
        for at in range(len(data))
        for bit in range(8)
    ]


def b64_flips(text: str) -> list[str]:
    return [base64.b64encode(changed).decode() for changed in flips(base64.b64decode(text))]


def refused(proof: dict[str, Any], key: Any = None, **options: Any) -> bool:
    try:
        check(proof, raw(LOG) if key is None else key, **options)
    except ProofError:
        return True
    return False


@pytest.mark.parametrize("index", [0, 1, 511, 512, 998, 999])
def test_an_inclusion_proof_verifies_with_the_raw_key_or_the_verifier_key(index: int) -> None:
    checked = check(inclusion(index), raw(LOG))
    assert (checked.kind, checked.index, checked.tree_size, checked.origin) == (
        "inclusion",
        index,
        SIZE,
        ORIGIN,
    )
    assert (
        check(inclusion(index), log_key(vkey(ORIGIN, 1, LOG))).root
        == base64.b64encode(ORACLE.mth(0, SIZE)).decode()
    )
    assert log_key(base64.b64encode(raw(LOG)).decode()) == raw(LOG)


def test_every_single_bit_change_to_the_path_leaf_size_or_index_is_refused() -> None:
    proof = inclusion(321)
    for at, node in enumerate(proof["path"]):
        assert all(
            refused({**proof, "path": [*proof["path"][:at], changed, *proof["path"][at + 1 :]]})
            for changed in b64_flips(node)
        )
    for changed in flips(leaf(321)):
        fields = {
            "position": struct.unpack(">q", changed[:8])[0],
            "record_id": str(UUID(bytes=changed[8:24])),
            "version": struct.unpack(">q", changed[24:32])[0],
            "event_hash": changed[32:].hex(),
        }
        assert refused({**proof, "leaf": fields}), fields
    for bit in range(63):
        assert refused({**proof, "tree_size": SIZE ^ (1 << bit)})
        assert refused({**proof, "index": 321 ^ (1 << bit)})


def test_every_single_bit_change_to_the_checkpoint_root_or_signature_is_refused() -> None:
    proof = inclusion(7)
    text, _, signature_line = proof["checkpoint"].partition("\n\n")
    origin, size, root = text.split("\n")
    for changed in b64_flips(root):
        assert refused({**proof, "checkpoint": f"{origin}\n{size}\n{changed}\n\n{signature_line}"})
    dash, name, encoded = signature_line.rstrip("\n").split(" ")
    for changed in b64_flips(encoded):  # the key ID's 32 bits and the signature's 512
        assert refused({**proof, "checkpoint": f"{text}\n\n{dash} {name} {changed}\n"})
    for bit in range(40):
        assert refused(
            {**proof, "checkpoint": f"{origin}\n{SIZE ^ (1 << bit)}\n{root}\n\n{signature_line}"}
        )


def test_a_wrong_key_or_a_key_the_proof_carries_is_refused() -> None:
    assert refused(inclusion(3), raw(MALLORY))
    forged = inclusion(3, key=MALLORY)  # re-signed by Mallory, whose key it carries
    forged["public_key"] = base64.b64encode(raw(MALLORY)).decode()
    assert refused(forged)
    assert refused(forged, log_key(vkey(ORIGIN, 1, LOG)))
    # a verifier key whose ID is not its name's and key's: altered, or another's
    good = vkey(ORIGIN, 1, LOG)
    name, hex_id, encoded = good.split("+", 2)
    wrong_id = f"{int(hex_id, 16) ^ 1:08x}"
    with pytest.raises(ProofError, match="does not match its name and key"):
        log_key(f"{name}+{wrong_id}+{encoded}")
    with pytest.raises(ProofError, match="type 0x01"):  # a key of no kind a note knows
        log_key(vkey(ORIGIN, 2, LOG))
    # the key names another log
    assert refused(inclusion(3), log_key(vkey("other.example/log", 1, LOG)))
    # signed under another log's name: not this origin's
    other_log = inclusion(3, name="other.example/log")
    assert refused(other_log, log_key(vkey("other.example/log", 1, LOG)))


def test_a_witness_key_named_as_the_log_is_not_the_log_key() -> None:
    """A checkpoint only cosigned (type 0x04) under the origin's name, by a witness key given as the log's
    key, is not signed by the log."""
    text = f"{ORIGIN}\n{SIZE}\n{base64.b64encode(ORACLE.mth(0, SIZE)).decode()}\n"
    stamp = int(time.time())
    cosig = (
        key_hash(ORIGIN, 4, WITNESS)
        + struct.pack(">Q", stamp)
        + WITNESS.sign(f"cosignature/v1\ntime {stamp}\n{text}".encode())
    )
    only_cosigned = f"{text}\n\u2014 {ORIGIN} {base64.b64encode(cosig).decode()}\n"
    assert refused({**inclusion(3), "checkpoint": only_cosigned}, log_key(vkey(ORIGIN, 4, WITNESS)))


def test_a_signature_by_an_unknown_key_is_ignored_and_one_claiming_the_log_key_must_verify() -> (
    None
):
    proof = inclusion(3)
    stranger = f"\u2014 {ORIGIN} {base64.b64encode(key_hash(ORIGIN, 1, MALLORY) + MALLORY.sign(b'x')).decode()}\n"
    assert not refused({**proof, "checkpoint": proof["checkpoint"] + stranger})
    claiming = f"\u2014 {ORIGIN} {base64.b64encode(key_hash(ORIGIN, 1, LOG) + MALLORY.sign(b'x')).decode()}\n"
    assert refused({**proof, "checkpoint": proof["checkpoint"] + claiming})


def test_witnesses_k_of_n() -> None:
    witness = NoteKey.parse(vkey("witness.example/w1", 4, WITNESS))
    other = NoteKey.parse(vkey("witness.example/w2", 4, MALLORY))
    cosigned = inclusion(5, witness=True)
    assert check(cosigned, raw(LOG), witnesses=[witness, other], quorum=1).witnesses == [
        "witness.example/w1"
    ]
    assert refused(cosigned, witnesses=[witness, other], quorum=2)
    assert refused(inclusion(5), witnesses=[witness], quorum=1)
    # the log's own signature is no witness's, even given as one
    assert refused(inclusion(5), witnesses=[NoteKey.parse(vkey(ORIGIN, 1, LOG))], quorum=1)
    text, _, lines = cosigned["checkpoint"].partition("\n\n")
    log_line, witness_line = lines.rstrip("\n").split("\n")
    dash, name, encoded = witness_line.split(" ")
    for changed in b64_flips(encoded)[::7]:
        assert refused(
            {**cosigned, "checkpoint": f"{text}\n\n{log_line}\n{dash} {name} {changed}\n"},
            witnesses=[witness],
            quorum=1,
        )


@pytest.mark.parametrize("old", [1, 2, 255, 256, 257, 999, 1000])
def test_a_consistency_proof_verifies_and_every_bit_change_is_refused(old: int) -> None:
    proof = consistency(old)
    assert check(proof, raw(LOG)).old_size == old
    for at, node in enumerate(proof["path"]):
        assert all(
            refused({**proof, "path": [*proof["path"][:at], changed, *proof["path"][at + 1 :]]})
            for changed in b64_flips(node)[::5]
        )
    for changed in b64_flips(proof["old_root"])[::5]:
        assert refused({**proof, "old_root": changed, "old_checkpoint": None})


def test_the_old_checkpoint_the_auditor_kept_must_match() -> None:
    proof = consistency(600)
    assert not refused(proof, kept_checkpoint=checkpoint(600))
    assert refused(proof, kept_checkpoint=checkpoint(601))
    assert refused({**proof, "old_checkpoint": checkpoint(599)})
    assert refused(proof, kept_checkpoint=checkpoint(600, key=MALLORY))
    forked = signed_note(f"{ORIGIN}\n600\n{base64.b64encode(ORACLE.mth(0, 599)).decode()}\n")
    assert refused(proof, kept_checkpoint=forked), "the log signed another root for 600 leaves"
    assert refused({**proof, "old_checkpoint": forked})


@pytest.mark.parametrize(
    "broken",
    [
        None,
        [],
        "text",
        {"schema": "writ.proof/1"},
        {"schema": "writ.proof/1", "kind": "inclusion", "checkpoint": 7},
        {"schema": "writ.proof/1", "kind": "inclusion", "checkpoint": "a\n\n"},
    ],
)
def test_a_malformed_document_is_refused_with_a_reason(broken: Any) -> None:
    with pytest.raises(ProofError, match=r"\w"):
        check(broken, raw(LOG))


def test_malformed_parts_are_refused() -> None:
    proof = inclusion(9)
    for change in (
        {"path": ["not base64!"]},
        {"leaf": "x"},
        {"leaf": {**proof["leaf"], "record_id": "x"}},
        {"checkpoint": proof["checkpoint"].replace("\n\n", "\n\x01\n")},
    ):
        assert refused({**proof, **change}), change
    for change, why in (  # refused before any work, for the reason that names the part
        ({"schema": "writ.proof/2"}, "not a writ.proof/1"),
        (  # the size written otherwise than the log writes it
            {
                "checkpoint": signed_note(
                    proof["checkpoint"].split("\n\n")[0].replace("\n1000\n", "\n01000\n") + "\n"
                )
            },
            "without leading zeroes",
        ),
        (
            {
                "checkpoint": signed_note(
                    f"{ORIGIN}\n1000\n{base64.b64encode(bytes(31)).decode()}\n"
                )
            },
            "root hash is 32 bytes",
        ),
        (  # more signature lines than any log and its witnesses need
            {"checkpoint": proof["checkpoint"] + proof["checkpoint"].split("\n\n")[1] * 64},
            "at most 64 signatures",
        ),
        ({"path": proof["path"] * 40}, "at most 64 hashes"),
        ({"path": [base64.b64encode(b"short").decode()]}, "a hash is 32 bytes"),
        ({"index": True}, "index is a 64-bit whole number"),
        ({"index": -1}, "index is a 64-bit whole number"),
        ({"leaf": {**proof["leaf"], "event_hash": "zz" * 32}}, "64 lowercase hex digits"),
        ({"leaf": {**proof["leaf"], "event_hash": "AB" * 32}}, "64 lowercase hex digits"),
    ):
        with pytest.raises(ProofError, match=why):
            check({**proof, **change}, raw(LOG))
