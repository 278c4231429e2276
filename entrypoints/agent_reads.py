"""What an agent's read leaves on the record: one decision with outcome ``read`` per ``query``, ``history``,
``approval_status`` and ``evaluate`` call, served or refused.

An auditor of an agent asks what it saw and what it tried before it wrote: which rows of which model (the
filters' fields and operators, the sort, how many rows came back), which record's history and how far, which
approval, which dry runs and what they said. The values are left out (the filters' values, the rows, the
previews): decisions outlive a purge, and a filter value is often the very personal data a purge erases. The
record is saved after the answer is made and before the agent has it, so no answer goes out unrecorded. It
costs one small event per call, next to nothing at an agent's pace (a model's turn per call). Reads through
the HTTP API, the CLI and the Python API are not recorded this way: an application's reads are its own to log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from domain.errors import WritError

if TYPE_CHECKING:
    from application.service import Writ
    from domain.principal import Principal
    from entrypoints.agent_tools import ToolSpec


def record_read(
    writ: Writ,
    reader: Principal,
    spec: ToolSpec,
    arguments: Mapping[str, Any],
    answer: Mapping[str, Any] | None,
    error: WritError | None = None,
) -> None:
    """Record ``spec``'s call by ``reader``: what it asked and how much ``answer`` held, or ``error``."""
    model: object = spec.model or arguments.get("model", "")
    if spec.kind == "approval_status":
        model = (answer or {}).get("model", "")
    record_id = arguments.get("approval_id" if spec.kind == "approval_status" else "id")
    told = [] if answer is None else _told(spec.kind, arguments, answer)
    writ.record_read(reader, spec.kind, model, record_id=record_id, error=error, reasons=told)


def _told(kind: str, arguments: Mapping[str, Any], answer: Mapping[str, Any]) -> list[str]:
    """What the call asked and got, without a value."""
    if kind == "query":
        return _query(arguments, answer)
    if kind == "history":
        more = (
            f"; more after version {answer['next_cursor']}"
            if answer["next_cursor"] is not None
            else ""
        )
        return [f"events after version {arguments.get('after', 0)}: {len(answer['events'])}{more}"]
    if kind == "evaluate":
        code = f" ({answer['code']})" if answer.get("code") else ""
        return [
            f"dry run of {arguments.get('kind')}: {answer['outcome']}{code}",
            *answer.get("reasons", []),
        ]
    return [f"status {answer.get('status')}"]


def _query(arguments: Mapping[str, Any], answer: Mapping[str, Any]) -> list[str]:
    conditions = [_condition(each) for each in arguments.get("filters", [])]
    told = [f"where {', '.join(conditions)}" if conditions else "every row"]
    if arguments.get("order_by"):
        told.append(f"order by {', '.join(map(str, arguments['order_by']))}")
    if arguments.get("include_deleted"):
        told.append("deleted rows too")
    more = ", more follow" if answer.get("next_cursor") else ""
    told.append(
        f"{len(answer['rows'])} rows{' after a cursor' if arguments.get('after') else ''}{more}"
    )
    return told


def _condition(condition: Any) -> str:
    if isinstance(condition, Mapping):
        return f"{condition.get('field')} {condition.get('op')}"
    return " ".join(map(str, list(condition)[:2]))
