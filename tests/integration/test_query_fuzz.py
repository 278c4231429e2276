"""Hypothesis against the query parameters of every read route, on a real ``writ serve`` over SQLite and
one over PostgreSQL at once: each generated request gets no 5xx, and the same status and code from both.

The parsers fuzzed are the door's: ``where=FIELD:OP[:VALUE]`` (fields of every type, the system columns,
any text; values as text, JSON, lists, NUL and control characters), ``sort``, ``limit``, ``after`` (random
text and cursors that decode, with values of any JSON type), and the decisions' ``by``, ``model``,
``outcome``, ``since``, ``until``, ``after``, ``limit`` and the approvals' ``status``, ``after``, ``limit``.
``WRIT_FUZZ_EXAMPLES`` (default 4) scales the examples: 25 times it per test.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.http_support import CATALOG, Server, database, start, token

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

EXAMPLES = 25 * int(os.environ.get("WRIT_FUZZ_EXAMPLES", "4"))
AUDITOR = token("ann", "acme", "auditor", "manager", "clerk", lifetime=6 * 3600)
FIELDS = [
    "name",
    "meta",
    "l",
    "counts",
    "size",
    "amount",
    "at",
    "ok",
    "id",
    "tenant_id",
    "_state",
    "_version",
    "_created_at",
    "_created_by",
    "_updated_at",
    "_updated_by",
]
OPERATORS = ["eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "is_null"]
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)

SPECIAL = [
    "\x00",
    "\x01",
    "\x7f",
    ":",
    ",",
    "[",
    "{",
    '"',
    "%",
    "-",
    "é",
    "²",
    "\u2028",
    "\U0010ffff",
    "a",
    "1",
]
"""Characters the parsers split on, decode or refuse, often; any other code point (a URL carries them all) too."""
text = st.text(st.sampled_from(SPECIAL), max_size=8) | st.text(
    st.characters(codec="utf-8"), max_size=40
)
scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
values = (
    text
    | json_values.map(lambda v: orjson.dumps(v).decode())
    | st.sampled_from(
        [
            "1e400",
            "18446744073709551616",
            "0001-01-01T00:00:00+14:00",
            "[" * 2000,
            "²",
            "2026-01-01T00:00:00Z",
            "00000000-0000-4000-8000-000000000000",
            "9" * 70,
            "true",
        ]
    )
)
filters = (
    st.builds(
        lambda f, op, v: f"{f}:{op}:{v}",
        st.sampled_from(FIELDS) | text,
        st.sampled_from(OPERATORS) | text,
        values,
    )
    | text
)
sort_keys = st.lists(
    st.builds(
        lambda minus, name: minus + name, st.sampled_from(["", "-"]), st.sampled_from(FIELDS) | text
    ),
    max_size=10,
)
numbers = st.integers(min_value=-5, max_value=2**70).map(str) | text


def cursor(sort: list[str], found: list[Any]) -> str:
    keys = [
        *sort,
        *(
            []
            if any(k.lstrip("-") == "id" for k in sort)
            else ["-id" if sort and sort[-1].startswith("-") else "id"]
        ),
    ]
    body = orjson.dumps({"o": keys, "v": found})
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    """A ``writ serve`` on SQLite and one on PostgreSQL, the same catalog and the same records in each."""
    directory = tmp_path_factory.mktemp("query-fuzz")
    for kind in ("sqlite", "postgres"):
        (directory / kind).mkdir()
    catalog = directory / "writ.toml"
    catalog.write_text(CATALOG)
    with contextlib.ExitStack() as stack:
        both = tuple(
            stack.enter_context(_serving(kind, directory, catalog))
            for kind in ("sqlite", "postgres")
        )
        for server in both:
            for n in range(3):
                made = server.call(
                    "POST",
                    "/v1/Doc",
                    bearer=AUDITOR,
                    json={
                        "name": f"doc {n}",
                        "meta": {"n": [n, 1e300]},
                        "l": [n, "x", True],
                        "counts": [n],
                        "size": n,
                        "amount": f"{n}.5",
                        "at": "2026-01-01T00:00:00Z",
                        "ok": n % 2 == 0,
                    },
                )
                assert made.status_code == 201, made.text
            assert (
                server.call(
                    "GET",
                    "/v1/Doc",
                    bearer=AUDITOR,
                    headers={"Writ-Wait-Position": str(made.json()["position"])},
                ).status_code
                == 200
            )
        yield both  # type: ignore[misc]


@contextlib.contextmanager
def _serving(kind: str, directory: Path, catalog: Path) -> Iterator[Server]:
    for url in database(kind, directory / kind):
        yield from start(url, catalog)


def same_answer(servers: tuple[Server, Server], path: str, params: Any) -> None:
    """No 5xx on either database, and the same status and code from both."""
    answers = []
    for server in servers:
        response = server.call("GET", path, params=params, bearer=AUDITOR)
        assert response.status_code < 500, (
            f"{server.database_url[:10]} {path} {params!r}: {response.text}"
        )
        answers.append(
            (
                response.status_code,
                response.json().get("code") if response.status_code >= 400 else None,
            )
        )
    assert answers[0] == answers[1], (
        f"{path} {params!r}: SQLite {answers[0]}, PostgreSQL {answers[1]}"
    )


PARAMETERS = (
    [("/v1/Doc", name) for name in ("where", "sort", "limit", "after", "include_deleted")]
    + [
        ("/v1/decisions", name)
        for name in ("by", "model", "outcome", "since", "until", "after", "limit")
    ]
    + [("/v1/approvals", name) for name in ("status", "after", "limit")]
)


@FUZZ
@given(parameter=st.sampled_from(PARAMETERS), value=values | filters | numbers)
def test_each_parameter_alone(
    servers: tuple[Server, Server], parameter: tuple[str, str], value: str
) -> None:
    path, name = parameter
    same_answer(servers, path, {name: value})


@FUZZ
@given(
    where=st.lists(filters, max_size=4),
    sort=sort_keys,
    limit=st.none() | numbers,
    include_deleted=st.none() | st.sampled_from(["true", "0", "maybe"]),
)
def test_row_queries(
    servers: tuple[Server, Server],
    where: list[str],
    sort: list[str],
    limit: str | None,
    include_deleted: str | None,
) -> None:
    params = {
        "where": where,
        "sort": sort,
        **({"limit": limit} if limit is not None else {}),
        **({"include_deleted": include_deleted} if include_deleted is not None else {}),
    }
    same_answer(servers, "/v1/Doc", params)


@FUZZ
@given(
    sort=st.lists(
        st.sampled_from(["name", "-size", "amount", "-at", "ok", "_version", "_created_at"]),
        max_size=3,
        unique=True,
    ),
    found=st.lists(json_values, max_size=5) | json_values,
    raw=st.none() | text,
)
def test_cursors(
    servers: tuple[Server, Server], sort: list[str], found: Any, raw: str | None
) -> None:
    after = raw if raw is not None else cursor(sort, found if isinstance(found, list) else [found])
    same_answer(servers, "/v1/Doc", {"sort": sort, "after": after})


@FUZZ
@given(
    by=st.none() | text,
    model=st.none() | text,
    outcome=st.none() | text | st.sampled_from(["refused"]),
    since=st.none() | values,
    until=st.none() | values,
    after=st.none() | numbers,
    limit=st.none() | numbers,
)
def test_decision_queries(servers: tuple[Server, Server], **params: str | None) -> None:
    same_answer(servers, "/v1/decisions", {k: v for k, v in params.items() if v is not None})


@FUZZ
@given(
    status=st.none() | text | st.sampled_from(["all", "pending", "executed"]),
    after=st.none() | text,
    limit=st.none() | numbers,
)
def test_approval_queries(servers: tuple[Server, Server], **params: str | None) -> None:
    same_answer(servers, "/v1/approvals", {k: v for k, v in params.items() if v is not None})
