"""Fuzz every operation of the server's own OpenAPI document with schemathesis: no input may cause a 5xx.

Path parameters are pinned to a real model (and version) half of the time, so that generated bodies reach
the validation code instead of stopping at 404. One self-contained test: it runs alone, in any order, and
counts its own requests (schemathesis' lazy `from_fixture` relies on pytest internals that pytest 9.2 dropped).
"""

from __future__ import annotations

import hypothesis.strategies as st
import schemathesis
from hypothesis import HealthCheck, Phase, given, note, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import RunningServer

EXAMPLES_PER_OPERATION = 40
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _cases(operation: schemathesis.APIOperation) -> st.SearchStrategy[schemathesis.Case]:
    """Valid and invalid requests (the invalid branch draws nothing where there is nothing to break)."""
    return st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))


def _fuzz(operation: schemathesis.APIOperation, base_url: str, requests: list[str]) -> None:
    """Hypothesis over one operation; each request is appended to REQUESTS."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_cases(operation))
    def check(case: schemathesis.Case) -> None:
        if case.path_parameters and len(requests) % 2 == 0:
            case.path_parameters = {**case.path_parameters, "model_name": "iris"}
            if "model_version" in case.path_parameters:
                case.path_parameters["model_version"] = "1"
        requests.append(operation.label)
        note(f"operation: {operation.label}")
        case.call_and_validate(base_url=base_url, checks=CHECKS)

    check()


def test_no_input_makes_a_server_error(server: RunningServer) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5, [op.label for op in operations]
    requests: list[str] = []
    for operation in operations:
        _fuzz(operation, server.url, requests)
    assert len(requests) > 200, f"only {len(requests)} requests generated"
    print(f"\nschemathesis: {len(requests)} requests over {len(operations)} operations, no server error")
