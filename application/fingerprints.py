"""Fingerprints as Writ keeps them: keyed, so they answer no guess.

An idempotency key's claim, an approval request and a bulk update's claim each keep a fingerprint of what was
asked (``domain.commands.fingerprint_of``, ``application.parking.fingerprint``: SHA-256 of the canonical
JSON), to tell a repeat of the same command from another. A bare hash let anyone who could read it (the
store's tables, an approver through the approvals' read model, a subscriber on the bus) test guesses against
it: a value with few possibilities (a score, a flag, a date) came back, even after its record's purge. So it is
kept as HMAC-SHA256 of that hash under the store's index key (``KeyRing.index_digest``, the key unique values
are named by), marked ``k1:``: the same command still matches, and whoever lacks the key learns nothing from
it. One kept before this (a bare hash, no mark) is compared as it was, so claims and requests made earlier
still match their repeats and approvals.
"""

from __future__ import annotations

import base64
import hmac

from application.ports import KeyRing

KEYED = "k1:"


def kept(keys: KeyRing, fingerprint: str | None) -> str:
    """How ``fingerprint`` is kept ("" for commands that cannot be encoded: it matches no command): the mark and
    the HMAC in base64url, 46 characters, one word to copy from a terminal."""
    if not fingerprint:
        return ""
    digest = bytes.fromhex(keys.index_digest(["fingerprint", fingerprint]))
    return KEYED + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def matches(keys: KeyRing, stored: str, fingerprint: str | None) -> bool:
    """Whether the fingerprint ``stored`` (as ``kept`` keeps it, or a bare hash from before) is ``fingerprint``'s."""
    if not stored or not fingerprint:
        return False
    if stored.startswith(KEYED):
        return hmac.compare_digest(stored, kept(keys, fingerprint))
    return hmac.compare_digest(stored, fingerprint)  # kept before fingerprints were keyed
