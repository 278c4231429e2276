"""Append-only on PostgreSQL: triggers that refuse to change history.

The events, snapshots, log manifest, log chain and checkpoint tables refuse
``UPDATE``, ``DELETE`` and ``TRUNCATE`` (``writ_append_only``). The key table
refuses them too, except two changes, each made by one of Writ's own functions
and nothing else: a purge (a live key's bytes set to NULL by the insert
function, for the record whose ``Purged`` tombstone that very call inserts)
and a rotation (a live key re-wrapped by ``writ_keys_rewrap``). The guard
knows who is changing a key from the stack PostgreSQL reports
(``PG_CONTEXT``): the outermost frame, the statement the session itself ran,
must be that function; a session setting a variable, running a ``DO`` block
or a function of its own is refused. Both functions are ``SECURITY DEFINER``
(they run as the tables' owner, with a fixed ``search_path``), so the runtime
role needs no UPDATE on the key table at all: the deployment option in the
README gives it SELECT and INSERT on the tables and EXECUTE on the insert
function, and runs rotation as the owner. No other role may execute them:
PostgreSQL lets ``PUBLIC`` execute a new function, and ``only_granted`` takes
that away. Triggers stop mistakes and anyone
writing through a role that does not own the tables; a superuser or the
tables' owner can switch them off (``session_replication_role``, ``ALTER
TABLE ... DISABLE TRIGGER``), which is why ``writ verify`` and signed
checkpoints exist. SQLite has no roles and no such triggers: whoever can write
the file can change it, and ``writ verify`` is the check.
"""

from __future__ import annotations

from collections.abc import Sequence

from infrastructure.checkpoints import TABLE as CHECKPOINTS
from infrastructure.key_table import postgres_key_guards
from infrastructure.log_chain import CHAIN, MANIFEST


def postgres_guards(schema: str, events: str, snapshots: str, insert_function: str) -> list[str]:
    """DDL for the guards (PostgreSQL 14 or later: ``CREATE OR REPLACE TRIGGER``), every name quoted; the key
    table's own guard is ``infrastructure.key_table``'s (``postgres_key_guards``)."""
    refuse = _quoted(schema, "writ_append_only")
    statements = [
        f"CREATE OR REPLACE FUNCTION {refuse}() RETURNS trigger LANGUAGE plpgsql AS $writ$\n"
        "BEGIN\n"
        "    RAISE EXCEPTION 'writ: % on %.% refused: the table is append-only', TG_OP, TG_TABLE_SCHEMA,\n"
        "        TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';\n"
        "END;\n$writ$",
    ]
    # every statement, even one matching no row
    for table in (
        events,
        snapshots,
        MANIFEST,
        CHAIN,
        CHECKPOINTS,
    ):
        statements.append(
            f"CREATE OR REPLACE TRIGGER writ_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON "
            f"{_quoted(schema, table)} FOR EACH STATEMENT EXECUTE FUNCTION {refuse}()"
        )
    return [*statements, *postgres_key_guards(schema, insert_function)]


def only_granted(schema: str, function: str, types: Sequence[str]) -> str:
    """DDL taking ``function`` (one of Writ's ``SECURITY DEFINER`` functions) from ``PUBLIC``, which PostgreSQL
    lets execute every function it makes: left so, any role that may use the schema (an auditor's read-only one)
    would write, purge or re-wrap as the tables' owner. Run after each ``CREATE OR REPLACE``, at every start that
    makes tables, so a store made before this took effect loses it at its next such start; the roles granted
    ``EXECUTE`` (the runtime role: docs/operations.md) keep it. Named with its parameters' ``types``: an
    overload left by an earlier release (``postgres_recorder.PREVIOUS_SIGNATURES``) must not make the name
    ambiguous."""
    return f"REVOKE ALL ON FUNCTION {_quoted(schema, function)}({', '.join(types)}) FROM PUBLIC"


def _quoted(*names: str) -> str:
    return ".".join('"' + name.replace('"', '""') + '"' for name in names)
