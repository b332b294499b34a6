"""The REST API against its own OpenAPI schema, with schemathesis ("a schemathesis run
against it in CI finds no 5xx and no schema violation").

A real ``aiusage serve`` process; every operation of ``/openapi.json`` is exercised with
generated requests carrying a valid token of the role the route expects (Agent for agent
routes, Admin otherwise). Checked: no 5xx, responses conform to the documented schema, status
codes and content types are documented. Not checked: "schema-valid request rejected"
(positive_data_acceptance): rules such as "a timestamp at most 24 h in the future" or
"aiUsageTime <= duration" cannot be written in JSON Schema, so a schema-valid body may rightly
get 422.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis import checks
from tests.support.platform_procs import Deployment

pytestmark = pytest.mark.integration

ORG = "contract"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    dep = Deployment(tmp_path_factory.mktemp("contract"))
    try:
        dep.migrate()
        dep.create_org(ORG)
        server = dep.start_server()
        yield {
            "base": server.base_url,
            "admin": dep.token("contract-admin", ORG, "Admin"),
            "agent": dep.token("contract-agent", ORG, "Agent"),
        }
    finally:
        dep.close()


_CHECKS = [
    checks.not_a_server_error,
    checks.response_schema_conformance,
    checks.status_code_conformance,
    checks.content_type_conformance,
]


_AGENT_ROUTES = ("/api/agent/events", "/api/agent/token")


def _headers_for(path: str, deployment: dict[str, Any]) -> dict[str, str]:
    token = deployment["agent"] if path in _AGENT_ROUTES else deployment["admin"]
    return {"Authorization": f"Bearer {token}"}


def test_every_operation_answers_within_its_documented_contract(
    deployment: dict[str, Any],
) -> None:
    # Driven through schemathesis' Python API (its pytest plugin predates pytest 9): one
    # bounded hypothesis run per operation, failures collected so one report lists them all.
    schema = schemathesis.openapi.from_url(f"{deployment['base']}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    failures: list[str] = []
    for operation in operations:
        headers = _headers_for(operation.path, deployment)

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: Any) -> None:
            case.call_and_validate(
                base_url=deployment["base"],
                headers=headers,  # noqa: B023 - the given() runs inside this iteration
                checks=_CHECKS,
                excluded_checks=[checks.positive_data_acceptance],
                timeout=30,
            )

        try:
            exercise()
        except (Exception, BaseExceptionGroup) as exc:  # reported together below
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
