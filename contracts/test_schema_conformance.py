"""Every API operation, fuzzed from the spec by schemathesis with valid and invalid inputs.

Checks every built-in conformance check: status codes, content types, headers, bodies, no server errors,
invalid data rejected, valid data accepted, unsupported methods refused, auth enforced.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis

from contracts.plugin import API_TAGS, operation_id
from contracts.run import ContractRun
from contracts.safety import MUTATING

schema = schemathesis.pytest.from_fixture("tradefence_api_schema").include(tag=API_TAGS)


@schema.parametrize()
def test_operation_conforms_to_the_spec(case: schemathesis.Case, tradefence_http: requests.Session,
                                        tradefence_run: ContractRun) -> None:
    if operation_id(case) in MUTATING and (reason := tradefence_run.trading_skip_reason()):
        pytest.skip(reason)  # trading: only within the budget, in the run's own symbols
    case.call_and_validate(session=tradefence_http)
