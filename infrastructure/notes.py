"""Signed notes (C2SP ``signed-note``), checkpoints (C2SP ``tlog-checkpoint``) and witness cosignatures
(C2SP ``tlog-cosignature``, Ed25519 ``cosignature/v1``): the text a verifier needs besides the public key.

A checkpoint's note text is three lines, each ending in a newline: the log's origin, the tree size in
decimal, the base64 root hash (Writ adds no extension lines). A signed note is that text, a blank line, and
one line per signature: ``"— " + key name + " " + base64(key ID (4 bytes) || signature) + "\\n"`` (the dash
is U+2014). The log signs the note text with Ed25519; its key ID is
``SHA-256(key name || 0x0A || 0x01 || public key)[:4]`` and its key name is the origin. A witness signs
``"cosignature/v1\\ntime T\\n" + note text`` (``T``: POSIX seconds) with its own Ed25519 key; its
signature is ``key ID || T (8 bytes, big-endian) || signature`` and its key ID uses type byte 0x04.

Keys travel as verifier keys (``vkey``): ``name + "+" + 8 hex digits of the key ID + "+" +
base64(type byte || 32-byte public key)``. A verifier trusts only keys given to it out of band: a
signature by any other key is ignored, and a note no trusted key signed is refused (``NoteError``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DASH = "\u2014"
ED25519 = 0x01
COSIGNATURE = 0x04
MAX_NOTE_BYTES = 1 << 16
MAX_SIGNATURES = 64
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_B64 = re.compile("^[A-Za-z0-9+/]+={0,2}$")


class NoteError(ValueError):
    """A note that is malformed, or not signed as the verifier requires."""


def key_id(name: str, kind: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str, what: str) -> bytes:
    if not _B64.match(text):
        raise NoteError(f"{what} is not base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not base64") from None


def check_name(name: str) -> str:
    if not name or any(ch.isspace() or ch == "+" for ch in name) or _CONTROL.search(name):
        raise NoteError(f"a key name or origin is non-empty, without spaces or '+': {name[:80]!r}")
    return name


@dataclass(frozen=True)
class NoteKey:
    """A trusted public key: its name, kind (0x01 a log's key, 0x04 a witness's) and raw Ed25519 bytes."""

    name: str
    kind: int
    public: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.kind, self.public)

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.id.hex()}+{b64(bytes([self.kind]) + self.public)}"

    @classmethod
    def parse(cls, vkey: str) -> NoteKey:
        name, plus, rest = vkey.strip().partition("+")
        hex_id, plus2, encoded = rest.partition("+")
        if not (plus and plus2) or not re.fullmatch("[0-9a-fA-F]{8}", hex_id):
            raise NoteError(
                "a verifier key is NAME+KEYID+BASE64 (e.g. from `writ checkpoint export`)"
            )
        data = unb64(encoded, "the verifier key")
        if len(data) != 33 or data[0] not in (ED25519, COSIGNATURE):
            raise NoteError(
                "a verifier key holds an Ed25519 key (type 0x01) or a witness key (type 0x04)"
            )
        key = cls(check_name(name), data[0], data[1:])
        if key.id.hex() != hex_id.lower():
            raise NoteError(f"the verifier key's ID {hex_id} does not match its name and key")
        return key

    def verifies(self, text: str, signature: bytes) -> bool:
        """``signature`` (after the key ID) is this key's over ``text`` (a witness's: over its cosigned message)."""
        public = Ed25519PublicKey.from_public_bytes(self.public)
        message = text.encode()
        if self.kind == COSIGNATURE:
            if len(signature) != 72:
                return False
            message = cosigned_message(text, int.from_bytes(signature[:8], "big"))
            signature = signature[8:]
        try:
            public.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes

    @property
    def line(self) -> str:
        return f"{DASH} {self.name} {b64(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]

    def __str__(self) -> str:
        return self.text + "\n" + "".join(s.line for s in self.signatures)

    def with_signature(self, signature: Signature) -> Note:
        kept = tuple(
            s for s in self.signatures if (s.name, s.key_id) != (signature.name, signature.key_id)
        )
        return Note(self.text, (*kept, signature))


def sign(text: str, name: str, private: Ed25519PrivateKey) -> Signature:
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return Signature(name, key_id(name, ED25519, public), private.sign(text.encode()))


def cosign(text: str, name: str, private: Ed25519PrivateKey, timestamp: int) -> Signature:
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    stamped = timestamp.to_bytes(8, "big") + private.sign(cosigned_message(text, timestamp))
    return Signature(name, key_id(name, COSIGNATURE, public), stamped)


def cosigned_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def parse(signed: str) -> Note:
    """A signed note's text and signature lines (unverified)."""
    if len(signed.encode()) > MAX_NOTE_BYTES or _CONTROL.search(signed):
        raise NoteError(
            "a note is UTF-8 text with no control characters but newlines, at most 64 KiB"
        )
    text, blank, tail = signed.rpartition("\n\n")
    if not blank or not tail.endswith("\n"):
        raise NoteError(
            "a signed note is its text, a blank line, and signature lines each ending in a newline"
        )
    lines = tail[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note carries at most {MAX_SIGNATURES} signatures here")
    return Note(text + "\n", tuple(signature_line(line) for line in lines))


def signature_line(line: str) -> Signature:
    """One signature line, without its newline."""
    dash, _, rest = line.partition(" ")
    name, _, encoded = rest.partition(" ")
    if dash != DASH or " " in encoded:
        raise NoteError("a signature line is '\u2014 NAME BASE64'")
    data = unb64(encoded, "a signature")
    if len(data) < 5:
        raise NoteError("a signature is a 4-byte key ID and the signature itself")
    return Signature(check_name(name), data[:4], data[4:])


def verified_by(note: Note, key: NoteKey) -> bool:
    """The note carries a valid signature by ``key``; raises when a signature claiming to be ``key``'s (its name
    and key ID) fails, as the spec asks a verifier to reject such a note whole."""
    found = False
    for signature in note.signatures:
        if (signature.name, signature.key_id) != (key.name, key.id):
            continue
        if not key.verifies(note.text, signature.signature):
            raise NoteError(f"the signature of {key.name} does not verify: the note was altered")
        found = True
    return found


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    return f"{check_name(origin)}\n{size}\n{b64(root)}\n"


def parse_checkpoint(text: str) -> tuple[str, int, bytes]:
    """(origin, tree size, root hash) of a checkpoint's note text (extension lines are allowed and ignored)."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(line == "" for line in lines[:-1]):
        raise NoteError(
            "a checkpoint is at least three non-empty lines: origin, tree size, root hash"
        )
    origin, size, encoded = lines[0], lines[1], lines[2]
    if not re.fullmatch("0|[1-9][0-9]{0,18}", size):
        raise NoteError("a checkpoint's tree size is a decimal number without leading zeroes")
    root = unb64(encoded, "the root hash")
    if len(root) != 32:
        raise NoteError("a checkpoint's root hash is 32 bytes")
    return check_name(origin), int(size), root
