"""How the CLI shows results to a person, fitted to the terminal's width (``COLUMNS``, else the terminal, else
80 columns).

* One record or result: ``key  value`` lines (``key_values``). Every value is shown whole: a long one wraps
  at spaces under its column, a word longer than the column is the only thing ever split.
* A list: a table of one line per row (``table``). Columns carry a priority; those that do not fit are left
  out (named under the table), the rest get their natural width while it lasts, then are cut with ``…``, never
  below their header's width. An id column is cut to a prefix without ``…``: any 8 or more leading characters
  of an id are accepted wherever an id is (``entrypoints.cli.ids``).
* A history: a log, one block per event (``history_block``): version, event, time and actor on the first
  line, then why, under which decision, who approved, and each changed field on its own line.

Widths are counted in terminal cells (wide characters count two). Values are escaped by
``entrypoints.diffs.shown``: nothing a record holds can move the cursor.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click
from rich.cells import cell_len, chop_cells, set_cell_size

from entrypoints.diffs import NULL, change_lines, shown

GAP = "  "
SHORT_ID = 8
LEAST = 6
WANTED = 30
"""The most a column asks for before every column of its priority or higher has its place."""
"""The narrowest a column is cut to (its header permitting): five characters and ``…``."""
MIN_VALUE_WIDTH = 20


def width() -> int:
    """The terminal's width in columns: ``COLUMNS`` when set, else the terminal's, else 80."""
    return max(shutil.get_terminal_size((80, 24)).columns, 20)


def moment(value: Any) -> str:
    """An ISO-8601 time as ``2026-05-01 12:00:03Z`` (UTC, to the second); anything else as ``shown``."""
    if not isinstance(value, str):
        return shown(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return shown(value)
    if parsed.tzinfo is None:
        return shown(value)
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# -- one record: key/value lines ---------------------------------------------------------------------------------


class Lines(list[str]):
    """A value ``key_values`` shows a line per item (already ``shown``), e.g. the changes of an event."""


def key_values(
    pairs: Iterable[tuple[str, Any]], *, indent: int = 0, total: int | None = None
) -> list[str]:
    """``key  value`` lines, the keys in one column; a ``Lines`` value gives a line per item. Every value whole."""
    rows = [(key, value) for key, value in pairs]
    if not rows:
        return []
    room = (total or width()) - indent
    key_width = min(max(cell_len(key) for key, _ in rows), max(room // 3, 8))
    value_width = max(room - key_width - len(GAP), MIN_VALUE_WIDTH)
    lines: list[str] = []
    for key, value in rows:
        texts = list(value) if isinstance(value, Lines) and value else [shown(value)]
        wrapped = [line for text in texts for line in _wrap(text, value_width)]
        lead = " " * indent + (set_cell_size(key, key_width) if cell_len(key) <= key_width else key)
        # a key too long for the column: its value starts on the next line
        if cell_len(key) > key_width:
            lines.append(lead)
            lead = " " * (indent + key_width)
        lines.append(f"{lead}{GAP}{wrapped[0]}".rstrip())
        lines.extend(f"{' ' * (indent + key_width)}{GAP}{line}".rstrip() for line in wrapped[1:])
    return lines


def _wrap(text: str, size: int) -> list[str]:
    """``text`` in lines of at most ``size`` cells, broken at spaces (a longer word alone is split)."""
    if cell_len(text) <= size:
        return [text]
    lines = textwrap.wrap(text, size, break_long_words=False, break_on_hyphens=False) or [""]
    return [
        part
        for line in lines
        for part in (chop_cells(line, size) if cell_len(line) > size else [line])
    ]


def print_lines(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(line)


# -- lists: tables fitted to the width ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A table column: the row key it shows, its header, its priority (0 kept longest), how a value is shown,
    whether it is an id (cut to a prefix, never below ``SHORT_ID``), and the least width worth showing."""

    key: str
    header: str = ""
    priority: int = 5
    show: Callable[[Any], str] = shown
    is_id: bool = False
    least: int = 0

    @property
    def title(self) -> str:
        return self.header or self.key


def table(
    rows: Sequence[dict[str, Any]], columns: Sequence[Column], *, total: int | None = None
) -> list[str]:
    """The rows as a table of one line each, fitted to ``total`` columns (the terminal's width); a last line
    names the columns left out for want of room."""
    if not rows:
        return ["(nothing)"]
    cells = {c.key: [c.show(row.get(c.key)) for row in rows] for c in columns}
    natural = {
        c.key: max(cell_len(c.title), *(cell_len(text) for text in cells[c.key])) for c in columns
    }
    least = {
        c.key: min(natural[c.key], max(cell_len(c.title), c.least, SHORT_ID if c.is_id else LEAST))
        for c in columns
    }
    room = total or width()
    widths = _widths(columns, least, natural, room)
    shown_columns = [c for c in columns if c.key in widths]
    lines = [GAP.join(set_cell_size(c.title, widths[c.key]) for c in shown_columns).rstrip()]
    for index in range(len(rows)):
        lines.append(
            GAP.join(
                _fit(cells[c.key][index], widths[c.key], c.is_id) for c in shown_columns
            ).rstrip()
        )
    left_out = [c.title for c in columns if c.key not in widths]
    if left_out:
        lines.extend(
            _wrap(
                f"(not shown for want of width: {', '.join(left_out)}; --json shows every field)",
                room,
            )
        )
    return lines


def _widths(
    columns: Sequence[Column], least: dict[str, int], natural: dict[str, int], room: int
) -> dict[str, int]:
    """The width of each column shown. By priority, a column is taken at the width it wants (its natural width,
    at most ``WANTED``; an id its prefix) while that fits; then, in what is left, the others at their least;
    then what is still left goes, by priority, to columns cut short, and to ids to show them whole."""
    ranked = sorted(columns, key=lambda c: c.priority)
    wanted = {
        c.key: least[c.key] if c.is_id else max(least[c.key], min(natural[c.key], WANTED))
        for c in ranked
    }
    widths: dict[str, int] = {}
    for column in ranked:
        if _room_left(widths, room) >= wanted[column.key] + (len(GAP) if widths else 0):
            widths[column.key] = wanted[column.key]
    for column in ranked:  # cut, but not to a stub: at least two thirds of what it wants
        cut = min(wanted[column.key], _room_left(widths, room) - len(GAP))
        if column.key not in widths and cut >= max(least[column.key], wanted[column.key] * 2 // 3):
            widths[column.key] = cut
    if not widths:  # not even the first column fits: cut it to the terminal
        return {ranked[0].key: max(room, LEAST)}
    for column in sorted(ranked, key=lambda c: c.is_id):  # ids last: their prefix serves
        if column.key in widths and (
            not column.is_id or natural[column.key] - widths[column.key] <= _room_left(widths, room)
        ):
            widths[column.key] += max(
                0, min(_room_left(widths, room), natural[column.key] - widths[column.key])
            )
    return widths


def _room_left(widths: dict[str, int], room: int) -> int:
    return room - sum(widths.values()) - len(GAP) * max(len(widths) - 1, 0)


def _fit(text: str, size: int, is_id: bool) -> str:
    if cell_len(text) <= size:
        return set_cell_size(text, size)
    if is_id:
        return set_cell_size(text, size)  # a prefix of an id is an id (``entrypoints.cli.ids``)
    return set_cell_size(text, size - 1) + "…"


# -- a history: one block per event ------------------------------------------------------------------------------


def history_block(entry: dict[str, Any], *, total: int | None = None) -> list[str]:
    """One history entry (``HistoryEntry.to_dict()``) as a block of lines."""
    who = entry.get("actor") or NULL
    agent = (entry.get("audit") or {}).get("agent")
    head = f"v{entry['version']}  {entry['event']}  {moment(entry.get('at'))}  by {who}"
    details: list[tuple[str, Any]] = [("why", entry.get("purpose"))]
    if agent:
        details.append(("agent", agent))
    details.append(("decision", entry.get("decision_id")))
    approvers = (entry.get("approval") or {}).get("approvers")
    if approvers:
        details.append(("approved by", ", ".join(approvers)))
    if entry.get("reason") is not None:
        details.append(("reason", entry["reason"]))
    if entry.get("redacted"):
        names = ", ".join(entry.get("changed") or []) or "(names not kept)"
        details.append(("changed", f"{names} (values erased by the purge)"))
    elif entry.get("changes"):
        details.append(
            ("changed", Lines(change_lines(entry["changes"], created=entry["event"] == "Created")))
        )
    return [head, *key_values(details, indent=4, total=total)]


def history_blocks(entries: Iterable[dict[str, Any]]) -> Iterable[str]:
    """Every entry's block, a blank line between them (streamed: one entry at a time)."""
    for index, entry in enumerate(entries):
        if index:
            yield ""
        yield from history_block(entry)


# -- results of writes -------------------------------------------------------------------------------------------

RESULT_KEYS = (
    "status",
    "model",
    "id",
    "version",
    "state",
    "position",
    "decision_id",
    "approval_id",
    "replayed",
    "children",
)


def write_result(result: dict[str, Any]) -> list[str]:
    """A write's result (``WriteResult.to_dict()``): its keys (those that say something), then the record's fields
    as it left them."""
    pairs = [
        (key, result[key])
        for key in RESULT_KEYS
        if key in result and _says_something(key, result[key])
    ]
    lines = key_values(pairs)
    data = result.get("data")
    if isinstance(data, dict):
        fields = [
            (name, value)
            for name, value in data.items()
            if name != "id" and not name.startswith("_")
        ]
        lines += ["", "record:", *key_values(fields, indent=2)]
    return lines


def _says_something(key: str, value: Any) -> bool:
    return not (
        (key in ("approval_id", "version", "position") and value is None)
        or (key == "replayed" and not value)
        or (key == "children" and not value)
    )
