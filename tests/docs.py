"""Documentation that runs as written: the fenced blocks of a markdown page, selected by an explicit marker.

Every fenced block carries an HTML comment on the line before it saying what a reader does with it:

* ``<!-- test: run -->`` — run it: a ``sh`` block in bash (``set -euo pipefail``) in the page's directory, a
  ``python`` block in one namespace shared by the page's Python blocks (as one session would). Variables a
  shell block sets reach the later shell blocks (``set -a``: each block's variables are kept in a state
  file), and its background jobs are stopped when it ends. ``run free-port=8000`` replaces the port 8000
  with a free one, so two runs never collide on it.
* ``<!-- test: file PATH -->`` — the reader saves it as PATH (relative to the page's directory).
* ``<!-- test: same-as PATH -->`` — it shows a file an earlier step wrote: its text must be exactly PATH's.
* ``<!-- test: show: WHY -->`` — an illustration not to run here, and why (it needs a server the page does
  not start, or runs until stopped). Its Python is still compiled and checked for undefined names.

A block without a marker fails the page: each block's fate is a decision written next to it. ``Walkthrough``
runs one page top to bottom in a fresh directory (``.venv`` linked to this checkout's, as after ``make demo``).
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!--\s*test:\s*(run|file|same-as|show)\b(.*?)-->\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    text: str
    kind: str
    argument: str

    @property
    def where(self) -> str:
        return f"{self.page.name}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page`` with its marker; a block without one fails."""
    lines = page.read_text().splitlines()
    found, index = [], 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        marker = MARKER.match(lines[index - 1]) if index else None
        if marker is None:
            pytest.fail(
                f"{page.name}:{index + 1}: a block without a <!-- test: ... --> marker on the line before"
            )
        found.append(
            Block(
                page,
                index + 1,
                fence.group(1),
                "\n".join(lines[index + 1 : end]) + "\n",
                marker.group(1),
                marker.group(2).strip().lstrip(":").strip(),
            )
        )
        index = end + 1
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Walkthrough:
    """One page's blocks run in order in ``directory`` with ``env``: what a reader following it does."""

    directory: Path
    env: dict[str, str]
    namespace: dict[str, Any] = field(default_factory=dict)
    ran: list[Block] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = self.directory / ".walkthrough-state.sh"
        venv = self.directory / ".venv"
        if not venv.exists():
            venv.symlink_to(ROOT / ".venv")

    def follow(self, page: Path) -> None:
        for block in blocks(page):
            self.step(block)

    def step(self, block: Block) -> None:
        if block.kind == "file":
            target = self.directory / block.argument
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text)
        elif block.kind == "same-as":
            assert (self.directory / block.argument).read_text() == block.text, (
                f"{block.where}: the block is not what {block.argument} holds"
            )
        elif block.kind == "show":
            assert block.argument, f"{block.where}: say why the block is not run (show: WHY)"
            if block.language == "python":
                check_names(block)
        elif block.language == "sh":
            self._shell(block)
        elif block.language == "python":
            self._python(block)
        else:
            pytest.fail(f"{block.where}: cannot run a {block.language or 'plain'} block")
        self.ran.append(block)

    def _shell(self, block: Block) -> None:
        text = block.text
        options = dict(part.split("=", 1) for part in block.argument.split() if "=" in part)
        if "free-port" in options:
            text = text.replace(options["free-port"], str(free_port()))
        script = (
            f"set -euo pipefail\nset -a\n[ -f {self.state} ] && source {self.state}\n{text}\n"
            f"export -p > {self.state}\n"
        )
        out, err = self.directory / ".walkthrough-out", self.directory / ".walkthrough-err"
        # files, not pipes: a background job keeps none
        with (
            out.open("w") as stdout,
            err.open("w") as stderr,
        ):
            process = subprocess.Popen(
                ["bash", "-c", script],
                cwd=self.directory,
                env=self.env,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
            try:
                status = process.wait(timeout=300)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    # the block's background jobs end with it
                    os.killpg(process.pid, signal.SIGTERM)
        if status != 0:
            pytest.fail(
                f"{block.where}: the shell block exited {status}\n--- stdout\n{out.read_text()}"
                f"\n--- stderr\n{err.read_text()}"
            )
        self.last_output = out.read_text()

    def _python(self, block: Block) -> None:
        code = compile(block.text, block.where, "exec")
        saved = dict(os.environ), Path.cwd()
        os.environ.clear()
        os.environ.update(self.env)
        os.chdir(self.directory)
        try:
            exec(code, self.namespace)
        finally:
            os.chdir(saved[1])
            os.environ.clear()
            os.environ.update(saved[0])


def check_names(block: Block) -> None:
    """A Python block not run here still compiles, awaits nothing at top level and names nothing it does not
    define or import (names a page's earlier blocks define do not count: it must stand alone)."""
    tree = ast.parse(block.text, block.where)
    top_level_await = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Await)
        and not any(isinstance(parent, ast.AsyncFunctionDef) for parent in _parents(tree, node))
    ]
    assert not top_level_await, f"{block.where}: await outside an async function"
    defined = (
        {name for node in ast.walk(tree) for name in _bound(node)}
        | set(dir(__builtins__))
        | set(dir(__import__("builtins")))
    )
    used = {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
    assert not used - defined, f"{block.where}: undefined names {sorted(used - defined)}"


def _bound(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return [node.id]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(alias.asname or alias.name).split(".")[0] for alias in node.names]
    if isinstance(node, ast.arg):
        return [node.arg]
    return []


def _parents(tree: ast.AST, target: ast.AST) -> list[ast.AST]:
    """The nodes from ``tree`` down to ``target``'s parent."""
    path: list[ast.AST] = []

    def visit(node: ast.AST) -> bool:
        if node is target:
            return True
        path.append(node)
        if any(visit(child) for child in ast.iter_child_nodes(node)):
            return True
        path.pop()
        return False

    visit(tree)
    return path


def reader_env(database_url: str | None = None, **extra: str) -> dict[str, str]:
    """A newcomer's environment: this machine's, without any ``WRIT_*`` setting but those given (the embedded
    default makes its key files beside the database, as on a first run) and without an active virtualenv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRIT_")}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    if database_url is not None:
        env["WRIT_DATABASE_URL"] = database_url
    env.update(extra)
    return env
