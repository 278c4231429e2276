"""Every ``writ`` command's ``--help`` ends with an example a newcomer can copy.

The commands are found by walking the real ``main`` group with click's own API (groups recursed into), so a
command added later without an ``Example:`` block fails here.
"""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from entrypoints.cli import main


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command under ``group`` as the words that invoke it (the group itself first, as ``()``)."""
    ctx = click.Context(group, info_name=" ".join(("writ", *prefix)))
    found: list[tuple[str, ...]] = [prefix]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, (
            f"`writ {' '.join((*prefix, name))}` is listed but cannot be loaded"
        )
        if isinstance(command, click.Group):
            found.extend(command_paths(command, (*prefix, name)))
        else:
            found.append((*prefix, name))
    return found


PATHS = command_paths(main)


def example_lines(output: str) -> list[str]:
    """The lines of the help's ``Example:`` block (up to the next blank line), stripped."""
    lines = [line.strip() for line in output.splitlines()]
    start = next((i for i, line in enumerate(lines) if line == "Example:"), None)
    if start is None:
        return []
    block: list[str] = []
    for line in lines[start + 1 :]:
        if not line:
            break
        block.append(line)
    return block


def test_the_walk_finds_the_commands_and_their_subcommands() -> None:
    words = {" ".join(path) for path in PATHS}
    assert {
        "",
        "create",
        "list",
        "approvals",
        "approvals approve",
        "keys rotate",
        "checkpoint",
        "checkpoint export",
        "audit export",
        "transaction",
    } <= words


@pytest.mark.parametrize("path", PATHS, ids=lambda path: " ".join(("writ", *path)))
def test_help_ends_with_an_example(path: tuple[str, ...]) -> None:
    command = " ".join(("writ", *path))
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="writ", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    block = example_lines(result.output)
    assert block, f"`{command} --help` has no 'Example:' block:\n{result.output}"
    assert block[0].startswith("writ "), (
        f"`{command} --help`: the line after 'Example:' is not a command line"
    )
    assert any(line == command or line.startswith(f"{command} ") for line in block), (
        f"`{command} --help`: no example runs `{command}` itself:\n{result.output}"
    )


def test_the_help_listing_says_what_each_command_says_of_itself() -> None:
    """`writ --help` lists the commands from an index, without importing them: each entry is the command's own
    first sentence, so the listing cannot drift from the command."""
    from entrypoints.cli import COMMANDS

    ctx = click.Context(main, info_name="writ")
    for name, (_, summary) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
        assert summary == command.get_short_help_str(limit=10**6), name
