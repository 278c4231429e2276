"""schemathesis against the OpenAPI document generated from the catalog, every operation, against a real
``writ serve`` on both databases: no 5xx, every status documented, every body as its schema says.

Bounded: a few examples per operation (``EXAMPLES``), so the suite stays fast; run with a larger
``WRIT_FUZZ_EXAMPLES`` to dig deeper.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from domain.catalog import Catalog
from entrypoints.http.openapi import document
from tests.http_support import CATALOG, Server, headers, server, token

__all__ = ["server"]  # the fixture

EXAMPLES = int(os.environ.get("WRIT_FUZZ_EXAMPLES", "4"))
schema = schemathesis.openapi.from_dict(document(Catalog.from_toml(CATALOG)))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_5xx_and_every_response_matches_its_schema(case: schemathesis.Case, server: Server) -> None:
    bearer = token("maria", "acme", "manager", "clerk", "auditor")
    response = case.call(base_url=server.url, headers=headers(bearer), timeout=30)
    case.validate_response(response, checks=CHECKS)
