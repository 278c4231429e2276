"""The command line as a newcomer meets it: demo, init and check."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from infrastructure.cli import main


def test_demo_tells_the_whole_story() -> None:
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    for expected in ("GRANT_MISSING", "IMMUTABLE_FIELD", "require_approval", "deleted", "purged",
                     "customer erasure request", "refused", "allowed"):
        assert expected in result.output


def test_init_then_check(tmp_path: Path) -> None:
    path = tmp_path / "writ.toml"
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(path)]).exit_code == 0
    assert runner.invoke(main, ["init", str(path)]).exit_code != 0
    checked = runner.invoke(main, ["check", "--json", str(path)])
    assert checked.exit_code == 0, checked.output
    assert "Order" in orjson.loads(checked.output)["models"]


def test_malformed_catalog_is_one_line_with_its_code(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[models.Order.fields]\nqty = { type = "float" }\n')
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: CATALOG_INVALID:")
    assert "model 'Order', key 'fields.qty.type'" in result.output
