"""Fresh ids and random bytes: every id, key and nonce Writ makes is drawn here, from OpenSSL's generator.

``os.urandom`` (which ``uuid.uuid4`` and ``secrets`` call) lets go of the GIL around its system call. A create
draws five times (its record id, its decision's id, its data key, the key's wrapping nonce and its data's
sealing nonce), and under concurrent writers each draw handed the interpreter to another thread and then
waited for it back: three times the context switches, and a fifth of the process's CPU in the kernel
(docs/performance.md, "random draws that keep the GIL"). ``ssl.RAND_bytes`` is OpenSSL's CSPRNG (seeded from
the operating system, safe across threads, reseeded in a forked child) and keeps the GIL for the draw, which
takes well under a microsecond. ruff bans ``os.urandom`` and ``uuid.uuid4`` outside this module and the tests
(``pyproject.toml``: ``banned-api``), so a new draw cannot slip back to them.
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
