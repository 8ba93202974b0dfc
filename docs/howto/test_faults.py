"""How to test your client's error handling: inject faults, then check what it sent.

`tradefence_sandbox.fault(...)` takes the fields of `POST /_mock/faults` (openapi.yaml, `FaultRequest`): which
requests (`operation`, `path`), what happens (`error_code`, `status`, `latency_ms`, `drop_connection`) and how
often (`count`, `probability`). The journal shows what your client did about it.
"""

import time

import requests

from mock_server.testing import Sandbox


def place_with_retry(api_url: str, headers: dict[str, str], order: dict, attempts: int = 3) -> requests.Response:
    """A client that honours Retry-After on 429 (the code under test, in a real project)."""
    for _ in range(attempts):
        response = requests.post(f"{api_url}/orders", headers=headers, json=order, timeout=10)
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers["Retry-After"]))
    return response


def test_the_client_retries_after_a_rate_limit(tradefence_sandbox: Sandbox) -> None:
    tradefence_sandbox.fault(operation="createOrder", error_code=2001, retry_after=1, count=1)

    response = place_with_retry(tradefence_sandbox.api_url, tradefence_sandbox.headers("alice"),
                                {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1})

    assert response.status_code == 201
    statuses = [entry["status"] for entry in tradefence_sandbox.journal(operation="createOrder")]
    assert statuses == [201, 429]  # newest first: refused once, then placed


def test_a_dropped_connection_is_a_connection_error(tradefence_sandbox: Sandbox) -> None:
    tradefence_sandbox.fault(operation="getAccount", drop_connection=True, count=1)
    headers = tradefence_sandbox.headers("alice")
    try:
        requests.get(f"{tradefence_sandbox.api_url}/account", headers=headers, timeout=10)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("the connection should have been dropped")
    assert requests.get(f"{tradefence_sandbox.api_url}/account", headers=headers, timeout=10).status_code == 200
