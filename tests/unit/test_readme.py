"""The README's reference tables say what the code does: the limits and the error codes."""

from __future__ import annotations

import re
from pathlib import Path

import domain.errors
import infrastructure.config
import infrastructure.log_proofs
import infrastructure.verification
import projections.errors
from domain.limits import Limits

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
UNITS = {"KiB": 1024, "MiB": 1024 * 1024}


def amount(text: str) -> int:
    number, _, unit = text.strip().partition(" ")
    return int(number.replace(",", "")) * UNITS.get(unit, 1)


def limits_table() -> dict[str, tuple[int, int]]:
    section = README[README.index("## Limits"):README.index("## Benchmarks")]
    found: dict[str, tuple[int, int]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`(\w+)`", cells[0])
        defaults, caps = cells[1].split(", "), cells[2].split(", ")
        for index, name in enumerate(names):
            found[name] = (amount(defaults[index]), amount(caps[index if len(caps) > 1 else 0]))
    return found


def test_the_limits_table_matches_the_defaults_and_caps() -> None:
    documented = limits_table()
    assert set(documented) == set(Limits.model_fields), "every limit documented, none invented"
    for name, (default, cap) in documented.items():
        field = Limits.model_fields[name]
        assert field.default == default, name
        assert next(m.le for m in field.metadata if hasattr(m, "le")) == cap, name


def codes_of(*modules: object) -> set[str]:
    return {value.code for module in modules for value in vars(module).values()
            if isinstance(value, type) and isinstance(getattr(value, "code", None), str)}


def test_the_errors_section_names_every_code_raised() -> None:
    section = README[README.index("### Errors"):README.index("## Command line")]
    documented = set(re.findall(r"`([A-Z][A-Z_]+)`", section))
    raised = codes_of(domain.errors, projections.errors, infrastructure.config, infrastructure.verification,
                      infrastructure.log_proofs) - {"WRIT_ERROR"}  # the root: abstract
    assert documented == raised
