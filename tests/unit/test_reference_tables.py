"""The docs' reference tables say what the code does: the limits (docs/limits.md) and the error codes
(docs/python-api.md), and every public name of the Writ facade (docs/python-api.md)."""

from __future__ import annotations

import re
from pathlib import Path

import domain.errors
import infrastructure.config
import infrastructure.log_proofs
import infrastructure.verification
import projections.errors
from domain.limits import Limits

DOCS = Path(__file__).resolve().parents[2] / "docs"


def section(page: str, heading: str) -> str:
    """A page's section: from its heading to the next heading of the same or a higher level."""
    text = (DOCS / page).read_text()
    start = text.index(f"\n{heading}\n")
    level = heading.split(" ", maxsplit=1)[0]
    ends = [
        m.start()
        for m in re.finditer(r"\n(#+) ", text[start + 1 :])
        if len(m.group(1)) <= len(level)
    ]
    return text[start : start + 1 + ends[0]] if ends else text[start:]


UNITS = {"KiB": 1024, "MiB": 1024 * 1024}


def amount(text: str) -> int:
    number, _, unit = text.strip().partition(" ")
    return int(number.replace(",", "")) * UNITS.get(unit, 1)


def limits_table() -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for line in (DOCS / "limits.md").read_text().splitlines():
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
    return {
        value.code
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type) and isinstance(getattr(value, "code", None), str)
    }


def test_the_errors_section_names_every_code_raised() -> None:
    documented = set(re.findall(r"`([A-Z][A-Z_]+)`", section("python-api.md", "## Errors")))
    raised = codes_of(
        domain.errors,
        projections.errors,
        infrastructure.config,
        infrastructure.verification,
        infrastructure.log_proofs,
    ) - {"WRIT_ERROR"}  # the root: abstract
    assert documented == raised


def test_every_public_name_of_writ_is_described_in_the_python_api_page() -> None:
    from application.service import Writ

    page = (DOCS / "python-api.md").read_text()
    public = {name for name in dir(Writ) if not name.startswith("_")}
    assert public >= {"create", "approve", "bulk_update", "history"}, "the facade's calls are found"
    assert {name for name in public if not re.search(rf"\b{name}\b", page)} == set()
