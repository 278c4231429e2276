"""schemathesis against the OpenAPI document generated from the catalog, every operation, against a real
``writ serve`` on both databases: no 5xx, and every check schemathesis has but one.

The schemathesis command line runs here as a user would run it (``st run URL --checks all``): its
examples, coverage, fuzzing and stateful phases, positive and negative data, NUL bytes included. One check
is excluded, ``positive_data_acceptance`` (every schema-valid request answered 2xx, 3xx, 401, 403, 404, 409
or 429): Writ refuses schema-valid requests by design, for what no schema can say, and documents each
refusal's status: a ``Writ-Wait-Position`` past the log's head (400), an ``If-Match`` naming another version
(412), a cursor that is not one the server made, ``where=`` text that is no ``FIELD:OP:VALUE`` for the
field's type, catalog rules across fields (a validator, a child's parent, a bulk update of a unique field,
a decimal's digits) and an empty or non-printable ``Idempotency-Key`` (400 or 422). And one check is told
one more status: ``negative_data_rejection`` takes 412 as the rejection it is (the record state, an
``If-Match`` naming another version, is decided before the field rules, as the pipeline's order says).

Bounded: a few examples per operation (``WRIT_FUZZ_EXAMPLES``, 4 by default), so the suite stays fast; run
with ``WRIT_FUZZ_EXAMPLES=50`` to dig deeper.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.http_support import Server, server, token

__all__ = ["server"]  # the fixture

EXAMPLES = int(os.environ.get("WRIT_FUZZ_EXAMPLES", "4"))
EXCLUDED = ("positive_data_acceptance",)
"""The checks not run, and why: see the module docstring."""
SEED = 20260101
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "412", "413", "415", "422", "428", "429"]
"""


@pytest.mark.slow
def test_no_5xx_and_every_check_passes(server: Server, tmp_path: Path) -> None:
    bearer = token("maria", "acme", "manager", "clerk", "auditor", lifetime=6 * 3600)
    report, config = tmp_path / "junit.xml", tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{server.url}/openapi.json",
        "--url",
        server.url,
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(EXCLUDED),
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--no-color",
        "-H",
        f"Authorization: Bearer {bearer}",
        "-H",
        "Writ-Purpose: fuzz",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=4 * 3600, check=False, cwd=tmp_path
    )
    summary = done.stdout[done.stdout.find(" SUMMARY ") :]
    print(summary)  # the counts, with -s
    assert done.returncode == 0, (
        f"schemathesis exited {done.returncode}\n{done.stdout[-20_000:]}\n{done.stderr}"
    )
    assert "Test cases:" in summary and "Failures:" not in summary, summary
