"""The example catalogs shipped in the package, by name: ``demo`` (the order desk ``writ demo`` runs on) and
``readme`` (the catalog README.md walks through; a test keeps the README's copy identical to this one)."""

from __future__ import annotations

from importlib import resources

EXAMPLES = {"demo": "demo_catalog.toml", "readme": "readme_catalog.toml"}


def example_catalog_text(name: str) -> str:
    """The text of a shipped example catalog (``EXAMPLES``)."""
    return resources.files("entrypoints").joinpath(EXAMPLES[name]).read_text()
