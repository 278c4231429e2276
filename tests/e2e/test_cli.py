"""The command line as a newcomer meets it: demo, init and check."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
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


def test_record_commands_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WRIT_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    for name, value in {"WRIT_USER": "carol", "WRIT_TENANT": "acme", "WRIT_ROLES": "clerk,manager",
                        "WRIT_PURPOSE": "cli test"}.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    created = runner.invoke(main, ["create", "Order", '{"sku": "A-1", "total": "5"}', "--json"])
    assert created.exit_code == 0, created.output
    record_id = orjson.loads(created.output)["id"]
    patched = runner.invoke(main, ["patch", "Order", record_id, '{"quantity": 4}', "--expected-version", "1",
                                   "--json"])
    assert orjson.loads(patched.output)["version"] == 2
    refused = runner.invoke(main, ["patch", "Order", record_id, '{"sku": "B-2"}'])
    assert refused.exit_code == 2 and "error: IMMUTABLE_FIELD:" in refused.output
    got = orjson.loads(runner.invoke(main, ["get", "Order", record_id, "--version", "1", "--json"]).output)
    assert got["quantity"] == 1
    history = orjson.loads(runner.invoke(main, ["history", "Order", record_id, "--json"]).output)
    assert [entry["event"] for entry in history] == ["Created", "Patched"]
    decisions = orjson.loads(runner.invoke(main, ["decisions", "--json"]).output)
    assert [d["outcome"] for d in decisions] == ["allowed", "allowed", "refused"]
    refused = orjson.loads(runner.invoke(main, ["decisions", "--outcome", "refused", "--json"]).output)
    assert [d["code"] for d in refused] == ["IMMUTABLE_FIELD"]
    bad = runner.invoke(main, ["patch", "Order", "not-a-uuid", "{}"])
    assert bad.exit_code == 2 and "error: INVALID_INPUT:" in bad.output
    assert "error: INVALID_INPUT:" in runner.invoke(main, ["create", "Order", "[1]"]).output
