"""``writ verify`` whose verifier fails before its end: status 2 and one error line, never status 1 (which
says the store does not verify) with no report."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import entrypoints.cli.verify as verify_command
from entrypoints.cli import main


def test_a_verifier_that_fails_is_no_broken_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(*_: object, **__: object) -> None:
        raise TypeError("cannot pickle '_hashlib.HASH' object")

    monkeypatch.setattr(verify_command, "verify_store", fails)
    done = CliRunner().invoke(
        main, ["verify", "--json", "--database", f"sqlite:///{tmp_path / 'writ.db'}"]
    )
    assert done.exit_code == 2, done.output
    assert done.stdout == ""
    assert "error: VERIFY_INCOMPLETE: verification stopped before its end" in done.stderr
    assert "cannot pickle" in done.stderr


def test_an_interrupted_verify_is_no_broken_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(verify_command, "verify_store", interrupted)
    done = CliRunner().invoke(
        main, ["verify", "--json", "--database", f"sqlite:///{tmp_path / 'writ.db'}"]
    )
    assert done.exit_code == 2, done.output
    assert done.stdout == ""
    assert "error: INTERRUPTED: stopped before its end" in done.stderr
