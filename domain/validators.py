"""Custom validators: named callables the catalog declares, run after the field rules and uniqueness.

The catalog's ``[validators]`` table names each one and where it lives (``name = "module:function"``,
imported when the catalog loads: a missing module or attribute is ``CATALOG_INVALID``); a model lists
the names it runs in ``validators``. A validator is called with the record as the write would leave it
(a dict of the tenant and fields, JSON-native values, and its ``id`` on an update) and the principal,
and returns the problems it finds: an iterable of ``(field, message)`` pairs, ``{"field": ...,
"message": ...}`` dicts or plain message strings (no field). Any problem refuses the write with
``VALIDATION_FAILED``, listing every problem of every validator; a validator that raises is a problem
too, never an escape.
"""

from __future__ import annotations

import copy
import importlib
import re
from collections.abc import Callable, Iterable
from typing import Any

from domain.errors import ValidationFailedError
from domain.fields import CatalogCheckError

Validator = Callable[[dict[str, Any], Any], Iterable[Any]]
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
MESSAGE_LENGTH = 500


def resolve_validator(name: str, target: str) -> Validator:
    key = f"validators.{name}"
    if not isinstance(target, str) or not _TARGET.match(target):
        raise CatalogCheckError(key, f"{str(target)[:100]!r} is not 'module:function'")
    module_name, _, attribute = target.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:
        # ImportError, AttributeError, or the module's own failure: all a bad catalog
        raise CatalogCheckError(
            key, f"cannot import {target}: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    if not callable(found):
        raise CatalogCheckError(key, f"{target} is not callable")
    return found  # type: ignore[no-any-return]


def run_validators(
    names: Iterable[str], validators: dict[str, Validator], record: dict[str, Any], principal: Any
) -> list[ValidationFailedError]:
    """Every problem the named validators find in ``record`` (empty: valid)."""
    problems: list[ValidationFailedError] = []
    for name in names:
        try:
            # a copy all the way down: a validator that appends to a list it is shown changes nothing written
            found = list(validators[name](copy.deepcopy(record), principal) or ())
        except Exception as exc:  # a validator's bug refuses the write; it never becomes a crash
            # its text goes to the caller only: Python's own messages quote values ("invalid literal for
            # int() with base 10: '...'"), and a decision outlives the record's purge
            raised = f"{name}: raised {type(exc).__name__}"
            problems.append(ValidationFailedError(f"{raised}: {_clip(str(exc))}", recorded=raised))
            continue
        problems.extend(_problem(name, item) for item in found)
    return problems


def _problem(name: str, item: Any) -> ValidationFailedError:
    if isinstance(item, dict):
        field, message = item.get("field"), item.get("message", "")
    elif isinstance(item, tuple | list) and len(item) == 2:
        field, message = item
    else:
        field, message = None, item
    return ValidationFailedError(
        f"{name}: {_clip(str(message))}", field=str(field)[:100] if field is not None else None
    )


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE_LENGTH else text[: MESSAGE_LENGTH - 3] + "..."
