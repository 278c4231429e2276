"""Where the CLI and the demo print: a rich console made afresh for each call.

rich fixes a console's width when it is made if ``COLUMNS`` is set then; a console made at import would keep
the width of whichever command happened to import it first (in one process, such as a test run, another
command's ``COLUMNS``). Made for each call, the width is the terminal's, or ``COLUMNS``, as it is now.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console


class FreshConsole:
    """``print`` and ``rule`` of a rich ``Console`` made for the call."""

    def print(self, *objects: Any, **options: Any) -> None:
        Console().print(*objects, **options)

    def rule(self, title: str = "", **options: Any) -> None:
        Console().rule(title, **options)


console = FreshConsole()
