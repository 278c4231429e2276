"""Append-only on PostgreSQL: triggers that refuse to change history.

The events, snapshots, log manifest, log chain and checkpoint tables refuse
``UPDATE``, ``DELETE`` and ``TRUNCATE`` (``writ_append_only``). The key table
refuses them too, except the two changes Writ makes, each announced by the
transaction in ``writ.key_change``: a purge (a live key's bytes set to NULL,
inside the insert function) and a rotation (a live key re-wrapped). Triggers
stop mistakes and anyone writing through Writ's role; a superuser or the
table's owner can switch them off (``session_replication_role``, ``ALTER
TABLE ... DISABLE TRIGGER``), which is why ``writ verify`` and signed
checkpoints exist. For a harder boundary, run Writ as a role that owns none of
these tables and holds only SELECT and INSERT on them (and UPDATE on the key
table). SQLite has no roles and no such triggers: whoever can write the file
can change it, and ``writ verify`` is the check.
"""

from __future__ import annotations

from infrastructure.checkpoints import TABLE as CHECKPOINTS
from infrastructure.log_chain import CHAIN, MANIFEST
from infrastructure.vault import TABLE as KEYS


def postgres_guards(schema: str, events: str, snapshots: str) -> list[str]:
    """DDL for the guards (PostgreSQL 14 or later: ``CREATE OR REPLACE TRIGGER``), every name quoted."""
    q = _quoted
    refuse = q(schema, "writ_append_only")
    keys_guard = q(schema, "writ_keys_guard")
    statements = [
        f"CREATE OR REPLACE FUNCTION {refuse}() RETURNS trigger LANGUAGE plpgsql AS $writ$\n"
        "BEGIN\n"
        "    RAISE EXCEPTION 'writ: % on %.% refused: the table is append-only', TG_OP, TG_TABLE_SCHEMA,\n"
        "        TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';\n"
        "END;\n$writ$",
        f"CREATE OR REPLACE FUNCTION {keys_guard}() RETURNS trigger LANGUAGE plpgsql AS $writ$\n"
        "DECLARE\n"
        "    v_change text := current_setting('writ.key_change', true);\n"
        "BEGIN\n"
        "    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND OLD.wrapped IS NOT NULL AND (\n"
        "        (v_change = 'purge' AND NEW.wrapped IS NULL AND NEW.destroyed_at IS NOT NULL)\n"
        "        OR (v_change = 'rotate' AND NEW.wrapped IS NOT NULL AND NEW.destroyed_at IS NULL)) THEN\n"
        "        RETURN NEW;\n"
        "    END IF;\n"
        "    RAISE EXCEPTION 'writ: % on %.% refused: data keys change only through purge and rotation', TG_OP,\n"
        "        TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';\n"
        "END;\n$writ$",
    ]
    for table in (events, snapshots, MANIFEST, CHAIN, CHECKPOINTS):  # every statement, even one matching no row
        statements.append(f"CREATE OR REPLACE TRIGGER writ_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON "
                          f"{q(schema, table)} FOR EACH STATEMENT EXECUTE FUNCTION {refuse}()")
    keys = q(schema, KEYS)
    statements += [f"CREATE OR REPLACE TRIGGER writ_append_only BEFORE DELETE OR TRUNCATE ON {keys} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {keys_guard}()",
                   f"CREATE OR REPLACE TRIGGER writ_keys_guard BEFORE UPDATE ON {keys} "
                   f"FOR EACH ROW EXECUTE FUNCTION {keys_guard}()"]
    return statements


def _quoted(*names: str) -> str:
    return ".".join('"' + name.replace('"', '""') + '"' for name in names)
