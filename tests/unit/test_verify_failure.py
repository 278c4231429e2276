"""``writ verify`` whose verifier fails before its end, or is interrupted: status 2 and one error line,
never status 1 (which says the store does not verify) with no report."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import entrypoints.cli.verify as verify_command
from entrypoints.cli import main


@pytest.mark.parametrize(
    ("stop", "said"),
    [
        (
            TypeError("cannot pickle '_hashlib.HASH' object"),
            "error: VERIFY_INCOMPLETE: verification stopped before its end, so the store's state is "
            "unknown (TypeError: cannot pickle '_hashlib.HASH' object)",
        ),
        (KeyboardInterrupt(), "error: INTERRUPTED: stopped before its end"),
    ],
    ids=["verifier-failed", "interrupted"],
)
def test_a_verifier_that_stops_is_no_broken_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: BaseException, said: str
) -> None:
    def stops(*_: object, **__: object) -> None:
        raise stop

    monkeypatch.setattr(verify_command, "verify_store", stops)
    done = CliRunner().invoke(
        main, ["verify", "--json", "--database", f"sqlite:///{tmp_path / 'writ.db'}"]
    )
    assert done.exit_code == 2, done.output
    assert done.stdout == ""
    assert said in done.stderr
