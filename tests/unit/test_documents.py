"""Kept JSON documents: the bytes orjson writes, in objects of their own size, so ten thousand stored events
kept until their save do not each hold two fresh pages of heap (measured in a fresh interpreter: page faults
and peak memory per document kept)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from uuid import uuid4

import orjson
import pytest

from infrastructure.documents import kept_json

ENCODERS = {
    "kept_json": "from infrastructure.documents import kept_json as encode",
    "a stored event's state": "from infrastructure.persistence import OrjsonTranscoder\n"
    "encode = OrjsonTranscoder().encode",
    "a relayed message": "from infrastructure.bus.contract import IntegrationEvent\n"
    "def encode(d): return IntegrationEvent(d['id'], 'Patched', d['id'], 2, 1, d['hash'], 'acme',"
    " 'Order', changes=d['changes'], hash=d['hash']).to_json()",
}
KEEP = r"""
import resource, sys, uuid
{encoder}
documents = [{{"id": str(uuid.uuid4()), "hash": uuid.uuid4().hex * 2, "reasons": ["policy: allow"] * 3,
              "changes": {{"note": uuid.uuid4().hex * 4}}}} for _ in range(5_000)]
before = resource.getrusage(resource.RUSAGE_SELF)
kept = [encode(document) for document in documents]
after = resource.getrusage(resource.RUSAGE_SELF)
print(after.ru_minflt - before.ru_minflt, after.ru_maxrss - before.ru_maxrss, sum(map(len, kept)))
"""


def test_the_same_bytes_as_orjson() -> None:
    document = {
        "at": datetime(2026, 12, 2, 11, 5, tzinfo=UTC),
        "id": uuid4(),
        "text": "é\u2028",
        "n": [1, 2.5, None],
    }
    encoded = kept_json(document)
    assert encoded == orjson.dumps(document)
    assert type(encoded) is bytes and orjson.loads(encoded)["text"] == "é\u2028"


@pytest.mark.parametrize("encoder", ENCODERS)
def test_kept_documents_do_not_each_take_fresh_pages(encoder: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", KEEP.format(encoder=ENCODERS[encoder])],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    faults, peak_kb, encoded = int(out[0]), int(out[1]), int(out[2])
    assert encoded > 5_000 * 200  # the documents were written
    assert faults < 0.5 * 5_000, (
        f"{faults} page faults for 5,000 kept documents (orjson's own buffers: 2 each)"
    )
    assert peak_kb < 3 * 5_000, (
        f"{peak_kb} KB more memory for 5,000 kept documents (orjson's own buffers: 8 KB each)"
    )
