"""How to test your client against the emulator with the `tradefence_sandbox` fixture.

`pip install tradefence-sandbox` adds the fixture to pytest; there is nothing to import or configure. Each test
gets an emulator as good as new (same seed, no accounts, the clock on real time), on a free loopback port.
Point your client at `tradefence_sandbox.api_url` and give it a token from `tradefence_sandbox.token(subject)`.
"""

import requests

from mock_server.testing import Sandbox


def test_a_market_order_fills_at_once(tradefence_sandbox: Sandbox) -> None:
    # Your client would do this; plain requests here. A token for "alice" opens her account (100,000 USD).
    headers = tradefence_sandbox.headers("alice")
    order = requests.post(f"{tradefence_sandbox.api_url}/orders", headers=headers, timeout=10,
                          json={"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 10}).json()

    assert order["status"] == "FILLED" and order["filled_quantity"] == 10
    # The control plane sees it too, without a token: alice's position, and the request your client sent.
    (position,) = tradefence_sandbox.positions("alice")
    assert (position["symbol"], position["quantity"]) == ("AAPL", 10)
    (sent,) = tradefence_sandbox.journal(operation="createOrder")
    assert sent["body"]["quantity"] == 10 and sent["headers"]["Authorization"] == "Bearer ***"


def test_every_test_starts_from_scratch(tradefence_sandbox: Sandbox) -> None:
    # The order of the test above is gone: no accounts, an empty journal.
    assert tradefence_sandbox.accounts() == []
    assert tradefence_sandbox.journal() == []


def test_an_account_with_little_cash_is_refused_a_large_order(tradefence_sandbox: Sandbox) -> None:
    tradefence_sandbox.account("bob", cash=100)
    response = requests.post(f"{tradefence_sandbox.api_url}/orders", headers=tradefence_sandbox.headers("bob"),
                             json={"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 10}, timeout=10)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == 1002  # insufficient funds
