"""The drift report (contracts/report.py): per operation, the check, expected vs actual and a reproducer, from the
suite's own violations and schemathesis's failures; the run's own refusals apart, as not drift."""

from __future__ import annotations

from collections import Counter

from schemathesis.core.failures import FailureGroup, ServerError

from contracts.checking import ContractViolation
from contracts.report import findings, render
from contracts.transport import WaitBudgetExhausted

SCHEMATHESIS_MESSAGE = """Schemathesis found 1 distinct failure

- Server error

[500] Internal Server Error:

    `{"error":{"code":5000,"type":"internal_error","message":"boom"}}`

Reproduce with:

    curl -X POST -H 'Authorization: [Filtered]' http://sandbox.test/v1/orders
"""


def test_violations_and_schemathesis_failures_become_findings_per_operation() -> None:
    ours = ContractViolation("getAccount", "cash moves only by fills", "cash 10 != expected 12",
                             "200: {\"cash\": 10}", "curl -X GET -H \"Authorization: Bearer $TOKEN\" http://x/v1/account")
    theirs = FailureGroup([ServerError(operation="POST /orders", status_code=500)], SCHEMATHESIS_MESSAGE)
    found = findings(ours, "t.py::test_cash") + findings(theirs, "t.py::test_fuzz",
                                                          {"POST /orders": "createOrder"}.__getitem__)
    assert [(f.operation, f.check, f.drift) for f in found] == [
        ("getAccount", "cash moves only by fills", True), ("createOrder", "ST101 Server error", True)]
    assert found[1].actual == '500: {"error":{"code":5000,"type":"internal_error","message":"boom"}}'
    assert found[1].reproducer == "curl -X POST -H 'Authorization: [Filtered]' http://sandbox.test/v1/orders"
    text = render(title="run", facts=[("Target", "sandbox")], found=found, outcomes=Counter(failed=2, passed=5),
                  skips=Counter({"needs the control plane": 3}))
    assert "**Drift: 2 findings in 2 operations.**" in text
    assert text.index("### `createOrder`") < text.index("### `getAccount`")
    assert "expected: cash 10 != expected 12" in text and '    200: {"cash": 10}' in text
    assert "    curl -X GET -H \"Authorization: Bearer $TOKEN\" http://x/v1/account" in text
    assert "- needs the control plane (3 tests)" in text


def test_what_the_run_could_not_check_is_not_drift() -> None:
    found = findings(WaitBudgetExhausted("[GET /v1/account] wait budget exhausted: ..."), "t.py::test_x")
    assert [(f.operation, f.drift) for f in found] == [("GET /v1/account", False)]
    text = render(title="run", facts=[], found=found, outcomes=Counter(failed=1), skips=Counter())
    assert "**No drift found.**" in text and "## The run could not check (not drift)" in text
