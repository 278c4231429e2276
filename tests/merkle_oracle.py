"""An RFC 9162 Merkle tree written from the RFC's text (section 2.1), sharing no code with Writ's: the
oracle Writ's proofs are compared with, in the unit tests and on both databases."""

from __future__ import annotations

import hashlib
from functools import cache


class Oracle:
    """RFC 9162 section 2.1, recursively, over a list of leaf inputs (MTH memoized on its range)."""

    def __init__(self, inputs: list[bytes]) -> None:
        self.hashes = [hashlib.sha256(b"\x00" + data).digest() for data in inputs]
        self.mth = cache(self._mth)

    @staticmethod
    def k(n: int) -> int:
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    def _mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 1:
            return self.hashes[start]
        k = self.k(n)
        return hashlib.sha256(
            b"\x01" + self.mth(start, start + k) + self.mth(start + k, end)
        ).digest()

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = self.k(n)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def proof(self, m: int, start: int, end: int, b: bool = True) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = self.k(n)
        if m <= k:
            return [*self.proof(m, start, start + k, b), self.mth(start + k, end)]
        return [*self.proof(m - k, start + k, end, False), self.mth(start, start + k)]

    def subtrees(self, level: int, index: int) -> bytes:
        return self.mth(index << level, (index + 1) << level)
