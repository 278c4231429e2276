"""Query filters: comparisons on one field of a record as it stands, as a caller sends them.

The views' queries and a bulk update's candidates take filters as ``Comparison`` objects,
``(field, op[, value])`` tuples or mappings (``filter_of``). A filter names no ``before.``/``after.``
state and has no ``changed`` operator: it reads one state, the current one. ``filters_of`` checks a
caller's whole list at the door, before anything reads its values: at most the catalog's ``filters``
filters, nested within ``nesting``, and at most ``filter_values`` values together (an ``in`` list counts
each item): both databases then take the query (SQLite nests each filter in an expression tree at most
1,000 deep and binds a bounded number of parameters), so a long list is ``INVALID_INPUT`` on both,
never a database error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pydantic

from domain.errors import InvalidFieldValueError, InvalidInputError
from domain.limits import Limits, nested_deeper_than
from domain.policy import FILTER_OPERATORS, Comparison, split_field

LISTS = (list, tuple, set, frozenset)


def filter_of(item: Any) -> Comparison:
    """A query filter, given as a ``Comparison``, a ``(field, op[, value])`` tuple or a mapping: a comparison
    on one field of the record as it stands (no ``before.``/``after.`` state, no ``changed``)."""
    try:
        if isinstance(item, Comparison):
            comparison = item
        elif isinstance(item, tuple):
            comparison = Comparison(
                field=item[0], op=item[1], value=item[2] if len(item) > 2 else None
            )
        else:
            comparison = Comparison.model_validate(item)
    except (pydantic.ValidationError, IndexError, TypeError):
        comparison = None
    if (
        comparison is None
        or comparison.op not in FILTER_OPERATORS
        or split_field(comparison.field)[0]
    ):
        raise InvalidFieldValueError(
            f"Invalid filter {shown_value(item)}: use (field, op, value) with op one of "
            f"{', '.join(FILTER_OPERATORS)}"
        )
    return comparison


def filters_of(items: Sequence[Any], limits: Limits) -> list[Comparison]:
    """A caller's filters, each read by ``filter_of``, within the catalog's limits (``INVALID_INPUT``)."""
    if len(items) > limits.filters:
        raise InvalidInputError(
            f"At most {limits.filters:,} filters in one query or bulk update, not {len(items):,}"
        )
    if nested_deeper_than(items, limits.nesting):
        raise InvalidInputError(
            f"filters nest lists and objects more than {limits.nesting} levels deep"
        )
    comparisons = [filter_of(item) for item in items]
    values = sum(
        len(c.value) if c.op == "in" and isinstance(c.value, LISTS) else 1 for c in comparisons
    )
    if values > limits.filter_values:
        raise InvalidInputError(
            f"The filters hold {values:,} values together (an 'in' list counts each); at most "
            f"{limits.filter_values:,}"
        )
    return comparisons


def shown_value(item: Any) -> str:
    text = ascii(item)
    return text if len(text) <= 100 else text[:97] + "..."
