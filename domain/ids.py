"""Fresh ids and random bytes: every id, key, nonce and name Writ makes is drawn here, from OpenSSL's generator.

``os.urandom`` (which ``uuid.uuid4`` and ``secrets`` call) lets go of the GIL around its system call. A create
draws five times (its record id, its decision's id, its data key, the key's wrapping nonce and its data's
sealing nonce), and under concurrent writers each draw woke a thread waiting for the GIL or handed the GIL
over and waited for it back: 11.7 voluntary context switches a create under 16 writers instead of 3.9, and
120 µs of system CPU instead of 55 (docs/performance.md, "Random draws that keep the GIL"). ``ssl.RAND_bytes``
is OpenSSL's CSPRNG (seeded from the operating system, safe across threads, reseeded in a forked child) and
keeps the GIL for the draw: 0.7 µs, against 0.45 µs for ``os.urandom``, so a writer alone pays about 1.5 µs
more a create. ruff bans ``os.urandom`` and ``uuid.uuid4`` outside the tests and the benchmarks
(``pyproject.toml``: ``banned-api``), and import-linter lets the domain import ``ssl`` here and nowhere else.
Only the HTTP console's session tokens and a dev signing secret (``entrypoints``) come from ``secrets``.
"""

from __future__ import annotations

from ssl import RAND_bytes
from uuid import UUID


def random_bytes(size: int) -> bytes:
    """``size`` bytes from a CSPRNG: for keys and nonces."""
    return RAND_bytes(size)


def new_id() -> UUID:
    """A random (version 4) UUID, as ``uuid.uuid4`` makes one."""
    return UUID(bytes=RAND_bytes(16), version=4)
