"""Fuzz every operation of the server's own OpenAPI document with schemathesis: no input may cause a 5xx.

Path parameters are pinned to a real model (and version) half of the time, so that generated bodies reach
the validation code instead of stopping at 404.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import RunningServer

CASES: list[int] = []


@pytest.fixture
def api_schema(server: RunningServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_a_server_error(case: schemathesis.Case) -> None:
    if case.path_parameters and len(CASES) % 2 == 0:
        case.path_parameters = {**case.path_parameters, "model_name": "iris"}
        if "model_version" in case.path_parameters:
            case.path_parameters["model_version"] = "1"
    CASES.append(1)
    case.call_and_validate(
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    )


def test_fuzzing_ran(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(CASES) > 200
    with capsys.disabled():
        print(f"\nschemathesis: {len(CASES)} generated requests, no server error")
