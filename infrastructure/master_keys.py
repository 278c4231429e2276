"""Master keys: what wraps every record's data key.

A master key is 32 random bytes, written as base64. ``WRIT_MASTER_KEY`` holds
one or more (comma-separated), or ``WRIT_MASTER_KEY_FILE`` names a file with
one per line; the first wraps new data keys, every one listed unwraps (so a
rotation can run while both are configured: put the new key first, run
``writ keys rotate``, then remove the old one and destroy it). A key is known
by its id, the first 16 hex digits of its SHA-256, stored beside every wrapped
data key.

The embedded default (SQLite) with neither variable set creates
``<database>.master-key`` beside the database file (mode 0600) the first
time, and says so once; PostgreSQL needs one configured. Data keys are
wrapped with AES-256-GCM, the record's id as associated data, so a wrapped key
moved to another record does not unwrap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.errors import ConfigurationError, KeyInvalidError
from domain.ids import random_bytes

log = logging.getLogger("writ.keys")

KEY_BYTES = 32
NONCE_BYTES = 12


class UnwrapError(KeyInvalidError):
    """A wrapped data key does not open with the master key it names (tampered, or moved): ``KEY_INVALID``."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


def new_master_key() -> str:
    """A fresh master key, as base64 text."""
    return encode_key(random_bytes(KEY_BYTES))


@dataclass
class MasterKeys:
    keys: list[bytes]
    source: str
    _ciphers: dict[str, AESGCM] = field(default_factory=dict, repr=False)
    _current_id: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ConfigurationError(f"{self.source}: no master key")
        self._ciphers = {key_id(k): AESGCM(k) for k in self.keys}
        self._current_id = key_id(self.keys[0])  # a hash: worked out once, not per wrapped key

    def __reduce__(self) -> tuple[type[MasterKeys], tuple[list[bytes], str]]:
        # its ciphers are made again (a verify worker gets a copy)
        return MasterKeys, (self.keys, self.source)

    @property
    def current_id(self) -> str:
        return self._current_id

    @property
    def ids(self) -> list[str]:
        return [key_id(k) for k in self.keys]

    def wrap(self, owner: UUID, data_key: bytes) -> tuple[bytes, str]:
        """``data_key`` wrapped by the current master key, and that key's id."""
        nonce, current = random_bytes(NONCE_BYTES), self.current_id
        return nonce + self._ciphers[current].encrypt(nonce, data_key, owner.bytes), current

    def unwrap(self, owner: UUID, wrapped: bytes, master_id: str) -> bytes:
        cipher = self._ciphers.get(master_id)
        if cipher is None:
            raise ConfigurationError(
                f"A data key is wrapped by master key {master_id}, which is not configured ({self.source} has "
                f"{', '.join(self.ids)}): add it to WRIT_MASTER_KEY or WRIT_MASTER_KEY_FILE"
            )
        try:
            return cipher.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], owner.bytes)
        except InvalidTag:
            message = (
                f"the data key of {owner} does not unwrap: altered, or moved from another record"
            )
            raise UnwrapError(message, record_id=str(owner)) from None


def parse_keys(text: str, source: str, what: str = "master key") -> list[bytes]:
    keys = []
    for number, item in enumerate(
        (part.strip() for part in text.replace(",", "\n").splitlines()), start=1
    ):
        if not item or item.startswith("#"):
            continue
        try:
            key = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError(f"{source}: {what} {number} is not base64") from None
        if len(key) != KEY_BYTES:
            raise ConfigurationError(
                f"{source}: {what} {number} has {len(key)} bytes; a {what} has "
                f"{KEY_BYTES} (make one with `writ keys new`)"
            )
        keys.append(key)
    return keys


def load_master_keys(*, beside: str | None) -> MasterKeys:
    """The configured master keys; on the embedded default (``beside``: the SQLite file) created when absent."""
    if os.environ.get("WRIT_MASTER_KEY"):
        return MasterKeys(
            parse_keys(os.environ["WRIT_MASTER_KEY"], "WRIT_MASTER_KEY"), "WRIT_MASTER_KEY"
        )
    named = os.environ.get("WRIT_MASTER_KEY_FILE")
    if named:
        return MasterKeys(parse_keys(_read(Path(named)), named), named)
    if beside is None:
        raise ConfigurationError(
            "PostgreSQL needs a master key: set WRIT_MASTER_KEY or WRIT_MASTER_KEY_FILE "
            "(`writ keys new` makes one)"
        )
    path = Path(f"{beside}.master-key")
    create_secret_file(path, "master key: it unlocks every record's data")
    return MasterKeys(parse_keys(_read(path), str(path)), str(path))


def configured_master_keys(*, beside: str | None) -> MasterKeys | None:
    """The master keys configured, or kept beside the embedded default's database; None when there are none
    (nothing is made: for a process that only checks, such as ``writ verify``)."""
    if os.environ.get("WRIT_MASTER_KEY") or os.environ.get("WRIT_MASTER_KEY_FILE"):
        return load_master_keys(beside=beside)
    if beside is None or not Path(f"{beside}.master-key").exists():
        return None
    return load_master_keys(beside=beside)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read the master key file {path}: {exc.strerror}"
        ) from None


def create_secret_file(path: Path, what: str) -> None:
    """32 random bytes in base64 at ``path`` (mode 0600), unless it exists; logged once, when made."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it first
    with os.fdopen(descriptor, "w") as handle:
        handle.write(new_master_key() + "\n")
    name, _, why = what.partition(": ")
    log.warning(
        "created %s %s (%s); keep it safe and back it up apart from the database", name, path, why
    )
