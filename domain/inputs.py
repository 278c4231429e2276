"""Models built from a caller's arguments: a bad argument is ``InvalidInputError``, never pydantic's.

``Principal`` and the commands are pydantic models so they can cross any
boundary; ``InputModel`` makes building one with bad fields raise Writ's own
``InvalidInputError`` (code ``INVALID_INPUT``) with one short message naming
the field. Pydantic's own text is not passed on whole: it repeats the input,
which may be huge or not encodable; ``describe`` keeps its reason and escapes
and caps everything else.
"""

from __future__ import annotations

from typing import Any, Self

import pydantic
from pydantic import BaseModel

from domain.errors import InvalidInputError
from domain.limits import label


class InputModel(BaseModel):
    """A pydantic model whose construction raises ``InvalidInputError`` on bad input."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except (pydantic.ValidationError, UnicodeError) as exc:
            raise InvalidInputError(describe(exc)) from None

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> Self:
        try:
            return super().model_validate(obj, **options)
        except (pydantic.ValidationError, UnicodeError) as exc:
            raise InvalidInputError(describe(exc)) from None


def describe(exc: pydantic.ValidationError | UnicodeError) -> str:
    """The first problem, as ``where: why``, safe to show and to store."""
    if not isinstance(exc, pydantic.ValidationError):
        return "text must be valid Unicode (no lone surrogates)"
    error = exc.errors()[0]
    where = ".".join(label(str(part), 40) for part in error["loc"])
    why = label(error["msg"].removeprefix("Value error, "), 300)
    return f"{where}: {why}" if where and not why.startswith(where) else why
