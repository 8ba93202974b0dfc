"""The one spec-checked session (contracts/checking.py), shared by the contract suite and these tests."""

from __future__ import annotations

import json
import shlex

import pytest
import requests

from contracts.checking import CheckedSession, ContractViolation, OperationMatcher, curl
from mock_server.spec.document import SpecDocument


def response(method: str, url: str, status: int, body: object, headers: dict[str, str] | None = None,
             **request: object) -> requests.Response:
    made = requests.Response()
    made.status_code = status
    made._content = json.dumps(body).encode()
    made.headers.update({"Content-Type": "application/json", "X-Request-Id": "req_1", **(headers or {})})
    made.request = requests.Request(method, url, **request).prepare()  # type: ignore[arg-type]
    return made


@pytest.mark.parametrize(("method", "path", "operation"), [
    ("GET", "/v1/orders/ord_1", "getOrder"),
    ("GET", "/_mock/webhooks/deliveries", "mockListWebhookDeliveries"),
    ("DELETE", "/_mock/webhooks/we_1", "mockDeleteWebhookEndpoint"),
    ("DELETE", "/_mock/webhooks/deliveries", None),  # a literal sibling's path is never a template's parameter
    ("POST", "/token", "token"),
    ("GET", "/v2/orders", None),
    ("PUT", "/v1/orders", None),
])
def test_operations_are_matched_on_the_emulator_s_layout(tradefence_spec_document: SpecDocument, method: str,
                                                         path: str, operation: str | None) -> None:
    found = OperationMatcher(tradefence_spec_document).match(method, path)
    assert (found.operation_id if found else None) == operation


def test_a_target_that_serves_the_api_elsewhere_is_matched_there(tradefence_spec_document: SpecDocument) -> None:
    matcher = OperationMatcher(tradefence_spec_document, api_prefix="/api/v1", root_prefix="/oauth")
    assert matcher.match("GET", "/api/v1/account").operation_id == "getAccount"
    assert matcher.match("POST", "/oauth/token").operation_id == "token"
    assert matcher.match("GET", "/v1/account") is None


def test_an_undocumented_answer_a_missing_request_id_and_a_bare_error_fail(
        tradefence_spec_document: SpecDocument) -> None:
    session = CheckedSession("http://sandbox.test", tradefence_spec_document)
    session.check(response("GET", "http://sandbox.test/v2/nothing", 404,
                           {"error": {"code": 4004, "type": "not_found", "message": "No such route"}}))
    with pytest.raises(ContractViolation, match="error envelope"):
        session.check(response("GET", "http://sandbox.test/v2/nothing", 404, {"message": "nope"}))
    with pytest.raises(ContractViolation, match="X-Request-Id"):
        made = response("GET", "http://sandbox.test/v1/account", 200, {})
        del made.headers["X-Request-Id"]
        session.check(made)
    with pytest.raises(ContractViolation, match=r"\[getAccount\] response conformance") as failure:
        session.check(response("GET", "http://sandbox.test/v1/account", 200, {"cash": "lots"}))
    assert failure.value.operation == "getAccount" and failure.value.reproducer.startswith("curl -X GET")


def test_reproducers_name_secrets_as_shell_variables() -> None:
    token_request = requests.Request("POST", "http://auth.test/token", data={
        "grant_type": "refresh_token", "refresh_token": "rt-secret-value", "client_id": "me",
        "client_secret": "cs-secret-value"}).prepare()
    command = curl(token_request)
    assert "rt-secret-value" not in command and "cs-secret-value" not in command
    assert '"refresh_token=$REFRESH_TOKEN"' in command and '"client_secret=$CLIENT_SECRET"' in command
    api_request = requests.Request("GET", "http://api.test/v1/account",
                                   headers={"Authorization": "Bearer eyJsecret"}).prepare()
    command = curl(api_request)
    assert "eyJsecret" not in command
    assert '-H "Authorization: Bearer $TOKEN"' in command  # double-quoted: the shell expands it
    assert shlex.split(command)[4] == "Authorization: Bearer $TOKEN"
