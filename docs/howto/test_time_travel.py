"""How to move time: token expiry, order expiry and market hours without waiting.

Every timestamp, fill, expiry, tick and webhook retry follows the emulator's one clock, and
`tradefence_sandbox.clock` moves it: `freeze()`, `advance(seconds)`, `set(datetime)`, `resume()`.
"""

from datetime import UTC, datetime

import requests

from mock_server.testing import Sandbox


def test_a_token_expires_when_the_clock_passes_its_lifetime(tradefence_sandbox: Sandbox) -> None:
    token = tradefence_sandbox.token("alice", expires_in=60)
    account = f"{tradefence_sandbox.api_url}/account"
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(account, headers=headers, timeout=10).status_code == 200

    tradefence_sandbox.clock.advance(61)

    expired = requests.get(account, headers=headers, timeout=10)
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]


def test_a_frozen_clock_stamps_everything_with_the_same_instant(tradefence_sandbox: Sandbox) -> None:
    moment = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
    tradefence_sandbox.clock.freeze(at=moment)
    order = requests.post(f"{tradefence_sandbox.api_url}/orders", headers=tradefence_sandbox.headers("alice"),
                          json={"symbol": "MSFT", "type": "MARKET", "side": "BUY", "quantity": 1}, timeout=10).json()
    assert order["created_at"] == "2026-11-25T15:30:00.000Z"


def test_orders_wait_while_the_market_is_closed(tradefence_sandbox: Sandbox) -> None:
    # "nyse" follows real NYSE hours on the emulator clock: a Saturday is closed.
    tradefence_sandbox.market("nyse")
    tradefence_sandbox.clock.freeze(at=datetime(2026, 11, 28, 16, 0, tzinfo=UTC))
    clock = requests.get(f"{tradefence_sandbox.api_url}/market/clock", headers=tradefence_sandbox.headers(),
                         timeout=10).json()
    assert clock["is_open"] is False
