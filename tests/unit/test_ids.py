"""``domain.ids``: random version-4 ids and random bytes, different in a forked child than in its parent."""

from __future__ import annotations

import os
from uuid import RFC_4122

from domain.ids import new_id, random_bytes


def test_an_id_is_a_random_version_4_uuid() -> None:
    ids = [new_id() for _ in range(2000)]
    assert all(i.version == 4 and i.variant == RFC_4122 for i in ids)
    assert len(set(ids)) == len(ids)
    # 122 random bits: every one of them varies across two thousand ids
    varied = 0
    for i in ids:
        varied |= i.int ^ ids[0].int
    assert bin(varied).count("1") == 122


def test_random_bytes_are_of_the_size_asked_and_differ() -> None:
    drawn = [random_bytes(12) for _ in range(1000)]
    assert {len(b) for b in drawn} == {12}
    assert len(set(drawn)) == len(drawn)
    assert len(random_bytes(32)) == 32


def test_a_forked_child_draws_other_bytes_than_its_parent() -> None:
    """The generator's state is copied by ``fork``: unless it is reseeded in the child, parent and child draw
    the same bytes next (the same nonces under one key, the same ids). Writ's own workers are spawned, but an
    application that opened Writ may fork (a pre-forking server, ``multiprocessing``'s default on Linux)."""
    random_bytes(16)  # the parent's generator is in use before the fork
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child: never back into pytest, whatever happens
        try:
            os.close(reading)
            os.write(writing, random_bytes(16) + new_id().bytes)
        finally:
            os._exit(0)
    os.close(writing)
    theirs = b""
    while len(theirs) < 32 and (chunk := os.read(reading, 32 - len(theirs))):
        theirs += chunk
    os.close(reading)
    assert os.waitpid(child, 0)[1] == 0
    ours = random_bytes(16) + new_id().bytes
    assert len(theirs) == 32
    assert theirs[:16] != ours[:16] and theirs[16:] != ours[16:]
