"""How to test what your app does with webhooks: the fixture's receiver collects every verified event.

`tradefence_sandbox.webhooks` is an HTTP endpoint registered with the emulator. It verifies each delivery as a
Standard Webhooks receiver does (HMAC signature with `webhooks.secret`, timestamp within 5 minutes of the
emulator's clock) and keeps the verified events; `wait_for(type)` waits for them. To test your own receiver
instead, register its URL with `POST /_mock/webhooks` and use the secret that call answers.
"""

import requests

from mock_server.testing import Sandbox


def test_a_fill_sends_a_signed_order_filled_event(tradefence_sandbox: Sandbox) -> None:
    order = requests.post(f"{tradefence_sandbox.api_url}/orders", headers=tradefence_sandbox.headers("alice"),
                          json={"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 3}, timeout=10).json()

    (event,) = tradefence_sandbox.webhooks.wait_for("order.filled")

    assert event["data"]["order"]["id"] == order["id"]
    assert event["account_id"] == "acc_alice"
    assert tradefence_sandbox.webhooks.rejected == []  # nothing arrived that failed verification


def test_a_failing_endpoint_gets_the_same_event_again(tradefence_sandbox: Sandbox) -> None:
    tradefence_sandbox.webhooks.status = 500  # the receiver fails; the emulator retries (1 s later by default)
    sent = tradefence_sandbox.trigger("alert.triggered")
    tradefence_sandbox.webhooks.wait_for("alert.triggered")

    tradefence_sandbox.webhooks.status = 204
    tradefence_sandbox.clock.advance(60)  # retries follow the emulator clock: no real waiting
    first, second = tradefence_sandbox.webhooks.wait_for("alert.triggered", count=2)

    assert first["id"] == second["id"] == sent["id"]  # same event (and webhook-id): deduplicate on it


def test_a_triggered_event_takes_your_data(tradefence_sandbox: Sandbox) -> None:
    tradefence_sandbox.trigger("order.filled", data={"order": {"symbol": "TSLA", "quantity": 5}})
    (event,) = tradefence_sandbox.webhooks.wait_for("order.filled")
    order = event["data"]["order"]
    # Everything else follows from what you gave: 5 shares filled, in fills of 5, at TSLA's price.
    assert (order["symbol"], order["quantity"], order["filled_quantity"]) == ("TSLA", 5, 5)
    assert sum(fill["quantity"] for fill in order["fills"]) == 5 and order["remaining_quantity"] == 0
