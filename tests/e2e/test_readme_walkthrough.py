"""Every page as a newcomer follows it: README.md and each page under ``docs/``, top to bottom, each in a fresh
directory of its own, on the embedded default, every block as its marker says (``tests/docs.py``): ``writ init``,
the catalog it wrote, the CLI, the HTTP API with a development token, the Python examples, the audit commands.
A page's blocks may build on the page's earlier blocks, never on another page's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs import ROOT, Walkthrough, blocks, reader_env

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_the_page_runs_as_written_from_an_empty_directory(page: Path, tmp_path: Path) -> None:
    walk = Walkthrough(tmp_path, reader_env())
    walk.follow(page)
    names = walk.namespace
    if page.name == "README.md":
        assert (tmp_path / "writ.db.master-key").exists(), (
            "the embedded default's key file, beside the database"
        )
        assert names["row"]["total"] == "25000" and names["row"]["quantity"] == 3, (
            "approved by two, executed"
        )
        assert [entry.event for entry in names["history"]] == ["Created", "Patched", "Patched"]
    if page.name == "audit-and-erasure.md":
        assert names["report"].ok and names["report"].findings == [], (
            "writ verify, after everything"
        )


def test_every_page_is_walked_and_every_block_says_what_to_do_with_it() -> None:
    assert {page.name for page in PAGES} >= {
        "README.md",
        "catalog.md",
        "python-api.md",
        "cli.md",
        "http.md",
        "agent-tools.md",
        "projections.md",
        "bus.md",
        "audit-and-erasure.md",
        "limits.md",
        "operations.md",
        "architecture.md",
        "performance.md",
        "upgrading.md",
        "console.md",
    }
    kinds = {page.name: [block.kind for block in blocks(page)] for page in PAGES}
    assert all(set(found) <= {"run", "file", "same-as", "show"} for found in kinds.values())
    assert kinds["README.md"].count("run") >= 2, "the README runs what it shows"
    assert sum(found.count("run") for found in kinds.values()) >= 20


def headings(page: Path) -> set[str]:
    """The anchors of a page's headings, as GitHub makes them (fenced blocks left out)."""
    found, fenced = set(), False
    for line in page.read_text().splitlines():
        fenced ^= line.startswith("```")
        heading = re.match(r"#+ (.*)", line) if not fenced else None
        if heading:
            found.add(re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-"))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_between_the_pages_leads_somewhere(page: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path) if path else page
        assert linked.exists(), f"{page.name}: {target} is no file"
        if anchor and linked.suffix == ".md":
            assert anchor in headings(linked), (
                f"{page.name}: {target} names no heading of {linked.name}"
            )
