"""README.md as a newcomer follows it: top to bottom, in a fresh directory, on the embedded default, every block
as its marker says (``tests/docs.py``): ``writ init``, the catalog it wrote, the CLI, the HTTP API with a
development token, the Python examples, the audit commands. Pages under ``docs/`` are followed the same way,
each in a directory of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs import ROOT, Walkthrough, blocks, reader_env

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_the_page_runs_as_written_from_an_empty_directory(page: Path, tmp_path: Path) -> None:
    walk = Walkthrough(tmp_path, reader_env())
    walk.follow(page)
    if page.name == "README.md":
        assert [b for b in walk.ran if b.kind == "run"], f"{page.name}: nothing to run"
        names = walk.namespace
        assert names["report"].ok and names["report"].findings == [], "writ verify, after everything"
        assert (tmp_path / "writ.db.master-key").exists(), "the embedded default's key file, beside the database"
        assert names["row"]["sku"] == "VASE-3"


def test_every_block_of_the_readme_says_what_to_do_with_it() -> None:
    kinds = [block.kind for block in blocks(ROOT / "README.md")]
    assert kinds.count("run") >= 12 and set(kinds) <= {"run", "file", "same-as", "show"}
