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
function, and runs rotation as the owner. Triggers stop mistakes and anyone
writing through a role that does not own the tables; a superuser or the
tables' owner can switch them off (``session_replication_role``, ``ALTER
TABLE ... DISABLE TRIGGER``), which is why ``writ verify`` and signed
checkpoints exist. SQLite has no roles and no such triggers: whoever can write
the file can change it, and ``writ verify`` is the check.
"""

from __future__ import annotations

from infrastructure.checkpoints import TABLE as CHECKPOINTS
from infrastructure.key_table import REWRAP_FUNCTION
from infrastructure.log_chain import CHAIN, MANIFEST
from infrastructure.vault import TABLE as KEYS


def postgres_guards(schema: str, events: str, snapshots: str, insert_function: str) -> list[str]:
    """DDL for the guards (PostgreSQL 14 or later: ``CREATE OR REPLACE TRIGGER``), every name quoted."""
    q = _quoted
    refuse = q(schema, "writ_append_only")
    keys_guard = q(schema, "writ_keys_guard")
    called = ("EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = "
              "TG_TABLE_SCHEMA AND p.proname = '{name}' AND starts_with(v_caller, 'PL/pgSQL function ' || "
              "p.oid::regprocedure::text || ' line '))")
    statements = [
        f"CREATE OR REPLACE FUNCTION {refuse}() RETURNS trigger LANGUAGE plpgsql AS $writ$\n"
        "BEGIN\n"
        "    RAISE EXCEPTION 'writ: % on %.% refused: the table is append-only', TG_OP, TG_TABLE_SCHEMA,\n"
        "        TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';\n"
        "END;\n$writ$",
        f"CREATE OR REPLACE FUNCTION {keys_guard}() RETURNS trigger LANGUAGE plpgsql "
        "SET search_path = pg_catalog, pg_temp AS $writ$\n"
        "DECLARE\n"
        "    v_stack text;\n"
        "    v_caller text;\n"
        "BEGIN\n"
        "    GET DIAGNOSTICS v_stack = PG_CONTEXT;\n"
        "    v_caller := substring(v_stack from '[^\\n]*$');  -- the outermost frame: what the session ran\n"
        "    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND OLD.wrapped IS NOT NULL AND NEW.created_at = OLD.created_at\n"
        "        AND ((NEW.wrapped IS NULL AND NEW.destroyed_at IS NOT NULL AND NEW.master_key = OLD.master_key\n"
        f"              AND {called.format(name=insert_function)})\n"
        "          OR (NEW.wrapped IS NOT NULL AND NEW.destroyed_at IS NULL\n"
        f"              AND {called.format(name=REWRAP_FUNCTION)})) THEN\n"
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
