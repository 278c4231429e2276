"""How the CLI lays out what it shows, checked at every width from 20 to 200 columns: no line wider than the
terminal, no column narrower than its header, every header whole, ids cut only to prefixes of 8 or more, and
one line per row; values cannot smuggle terminal control sequences."""

from __future__ import annotations

import re

import pytest

from entrypoints.cli.render import Column, Lines, key_values, table
from entrypoints.diffs import change_lines, changed, shown

ROWS = [
    {
        "id": f"{n:08x}-2a9c-4d0e-8a51-0b8f5b7f9c21",
        "sku": f"LAMP-{n}",
        "total": f"{n * 10}.50",
        "status": "placed",
        "note": "deliver to the loading bay behind the blue warehouse " * (n % 3),
        "_state": "modified",
    }
    for n in range(1, 6)
]
COLUMNS = [
    Column("id", priority=0, is_id=True),
    Column("sku", priority=1),
    Column("total", priority=1),
    Column("status", priority=2),
    Column("note", priority=4),
    Column("_state", "state", priority=3),
]


@pytest.mark.parametrize("width", range(20, 201, 7))
def test_a_table_fits_any_width_and_keeps_what_matters_most(width: int) -> None:
    lines = table(ROWS, COLUMNS, total=width)
    assert all(len(line) <= width for line in lines), width
    header, body = lines[0], lines[1 : 1 + len(ROWS)]
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    titles = header.split()
    assert titles[0] == "id" and set(titles) <= {c.title for c in COLUMNS}, (
        "headers whole, never cut"
    )
    key_of = {c.title: c.key for c in COLUMNS}
    for row, line in zip(ROWS, body, strict=True):
        cells = [
            line[start:end].strip() for start, end in zip(starts, [*starts[1:], None], strict=True)
        ]
        assert len(cells[0]) >= 8 and row["id"].startswith(cells[0]), "an id, or its prefix"
        for title, cell in zip(titles, cells, strict=True):
            value = row[key_of[title]].strip()
            assert (
                cell == value
                or (len(cell) >= 6 and cell.endswith("…") and value.startswith(cell[:-1]))
                or (title == "id" and value.startswith(cell))
            ), f"{title} at {width}: {cell!r} of {value!r}"
    if "sku" in titles:
        assert [line.split()[1] for line in body] == [row["sku"] for row in ROWS], (
            "a kept short value is whole"
        )


def test_one_record_shows_every_value_whole_at_80_columns() -> None:
    note = "deliver to the loading bay behind the blue warehouse and call ahead " * 3
    lines = key_values(
        [
            ("id", ROWS[0]["id"]),
            ("note", note.strip()),
            ("changed", Lines(["a: 1 → 2", "b: x → y"])),
        ],
        total=80,
    )
    assert all(len(line) <= 80 for line in lines)
    assert " ".join(line[6:].strip() for line in lines[1:-2]) == note.strip(), (
        "wrapped at spaces, nothing lost"
    )
    assert lines[-2:] == ["changed  a: 1 → 2", "         b: x → y"]


def test_values_cannot_carry_terminal_control_sequences() -> None:
    assert "\x1b" not in shown("red\x1b[31m\x1b[2J") and shown("a\nb") == "a\\nb"
    # C1 controls (\x9b is a one-byte CSI, \x85 a next-line), DEL, and Unicode's line and paragraph separators
    assert shown("red\x9b31m\x85\x7f\u2028\u2029") == "red\\x9b31m\\x85\\x7f\\u2028\\u2029"
    assert (
        shown(None) == "-" and shown({"a": [1, 2]}) == '{"a":[1,2]}' and shown("10.50") == "10.50"
    )


def test_a_change_reads_before_and_after_for_changed_fields_only() -> None:
    diff = changed(
        {"total": "5", "sku": "A", "_version": 1},
        {"total": "25000", "sku": "A", "note": "x"},
        first=["total"],
    )
    assert change_lines(diff) == ["total: 5 → 25000", "note: - → x"], (
        "asked first, system columns left out"
    )
    assert change_lines(diff, skip=("note",)) == ["total: 5 → 25000"], "the names skipped left out"
    assert change_lines(diff, created=True) == ["total: 25000", "note: x"], "a create: values set"
