"""The view store: the view tables and their positions in one database, behind a small interface.

``ViewStore`` is what the runner and the queries use: ``transaction`` and
``reading`` on the views' database (``Backend.database(views=True)``), the
``Layout`` of each model's table, the follower positions (one
``infrastructure.positions`` table) and the locks and wake-ups of the backend.
What differs per database is picked here, in one place, from the backend's
dialect: the ``ViewDialect`` (``projections.dialects``) and the row writer
(``projections.writer``; PostgreSQL's COPY variant lives in
``projections.postgres_writer`` and is imported only there). Table changes are
``projections.migrations``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from domain.catalog import Catalog, ModelSpec
from infrastructure.backend import Backend
from infrastructure.database import Tx
from infrastructure.positions import TABLE as POSITIONS_TABLE
from infrastructure.positions import Positions
from infrastructure.sql import Identifier
from projections.dialects import VIEW_DIALECTS, Codec
from projections.schema import Column, columns, table_name

POSITIONS_CHANNEL = "writ_positions"
"""Where a projection announces each committed batch (readers waiting for a position listen here)."""

_WRITERS = {
    "sqlite": "projections.writer:RowWriter",
    "postgres": "projections.postgres_writer:CopyRowWriter",
}


@dataclass(frozen=True)
class Layout:
    """One view table: its columns and how values travel to and from it."""

    model: str
    spec: ModelSpec
    table: str
    ident: Identifier
    columns: list[Column]
    encoders: list[Codec]
    decoders: list[Codec]
    row_encoders: list[Codec | None]

    def encode_row(self, values: list[Any]) -> list[Any]:
        """A final row (in column order) as the values a written row sends; in place."""
        for index, encode in self._encoding_steps:
            values[index] = encode(values[index])
        return values

    def decode_row(self, raw: tuple[Any, ...]) -> dict[str, Any]:
        return {n: dec(v) for n, dec, v in zip(self.names, self.decoders, raw, strict=True)}

    @cached_property
    def _encoding_steps(self) -> list[tuple[int, Codec]]:
        return [(i, encode) for i, encode in enumerate(self.row_encoders) if encode is not None]

    @cached_property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]


class ViewStore:
    """Views and their positions in the views' database of one backend."""

    def __init__(self, catalog: Catalog, backend: Backend) -> None:
        self.catalog, self.backend = catalog, backend
        self.dialect = VIEW_DIALECTS[backend.dialect.name]
        self.database = backend.database(views=True)
        self.positions = Positions(backend)
        module, _, name = _WRITERS[backend.dialect.name].partition(":")
        self.writer = getattr(importlib.import_module(module), name)(self)
        self._layouts: dict[tuple[str, bool], Layout] = {}
        self._positions_seen = False

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self.database.transaction() as tx:
            yield tx

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        with self.database.reading() as tx:
            yield tx

    def layout(self, model: str, *, shadow: bool = False) -> Layout:
        key = (model, shadow)
        if key not in self._layouts:
            spec = self.catalog.model(model)
            cols = columns(spec)
            table = table_name(self.catalog, model, shadow=shadow)
            self._layouts[key] = Layout(
                model,
                spec,
                table,
                self.backend.table(table),
                cols,
                [self.dialect.encoder(c.type) for c in cols],
                [self.dialect.decoder(c.type) for c in cols],
                [self.dialect.row_encoder(c.type) for c in cols],
            )
        return self._layouts[key]

    def reached(self, name: str) -> int | None:
        """The committed position of projection ``name``; None while no worker has ever claimed it."""
        with self.reading() as tx:
            if not self._positions_seen:
                self._positions_seen = bool(self.backend.existing_columns(tx, POSITIONS_TABLE))
                if not self._positions_seen:
                    return None
            position = self.positions.read(tx, name)
        return position.position if position.epoch else None

    def close(self) -> None:
        self.database.close()
