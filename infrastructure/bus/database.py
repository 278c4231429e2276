"""The database a ``Subscriber`` writes in: ``open_database`` for a Writ URL, and its ``Database`` and ``Tx``.

The implementation lives in ``infrastructure.database`` (transactions, ``Tx``) and the backend
(``infrastructure.backend``) that builds one for a database URL.
"""

from __future__ import annotations

from infrastructure.backend_choice import open_backend
from infrastructure.database import Database, Tx

__all__ = ["Database", "Tx", "open_database"]


def open_database(url: str | None = None) -> Database:
    """Transactions on the database a Writ URL names (``WRIT_DATABASE_URL`` when omitted)."""
    return open_backend(url).database()
