"""`mock_server.testing` (the `tradefence_sandbox` fixture and `sandbox()`): a reset is as good as a new emulator,
the receiver keeps only what verifies, the control plane's refusals are errors, and the plugins register nothing
without the `tradefence_` / `--tradefence-` / `--contract-` prefixes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import websocket
from standardwebhooks import Webhook

from mock_server.domain.market.hours import MarketMode
from mock_server.testing import ControlPlaneError, Sandbox, sandbox

MOMENT = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
ORDER = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 2}


def trade(tf: Sandbox) -> tuple[dict, dict]:
    """At MOMENT on a frozen clock: a quote and a filled order, which depend on the seed and the clock only."""
    tf.clock.freeze(at=MOMENT)
    headers = tf.headers("alice")
    quote = requests.get(f"{tf.api_url}/market/quotes/AAPL", headers=headers, timeout=10).json()
    order = requests.post(f"{tf.api_url}/orders", headers=headers, json=ORDER, timeout=10).json()
    return quote, order


def test_a_reset_sandbox_behaves_as_a_new_one() -> None:
    with sandbox(seed=9) as tf:
        fresh = trade(tf)
        # Delivered before the clock moves: a delivery stamped before the move and verified after it would fail
        # the receiver's 5-minute tolerance and hold every later event behind it.
        tf.webhooks.wait_for("order.filled")
        tf.market("closed")
        tf.fault(operation="getAccount", status=503)
        tf.rate_limit(1, 0.001)
        tf.account("bob", cash=5)
        tf.clock.set(MOMENT + timedelta(days=30))
        tf.trigger("alert.triggered")
        tf.webhooks.wait_for("alert.triggered")
        tf.webhooks.status = 500

        tf.reset()

        state = tf.state()
        assert (state["market_mode"], state["accounts"], state["orders"], state["faults"]) == ("open", 0, 0, 0)
        assert state["rate_limit"] == {"capacity": 120, "refill_per_second": 20.0}
        assert state["clock"]["frozen"] is False
        assert abs(tf.clock.now() - datetime.now(UTC)) < timedelta(seconds=5)
        assert tf.journal() == [] and tf.webhooks.deliveries == [] and tf.webhooks.status == 204
        assert tf.deliveries() == []
        assert trade(tf) == fresh  # the same prices and ids: the seed's streams started over
    with sandbox(seed=9) as other:
        assert trade(other) == fresh


def test_the_clock_controls_move_the_emulators_clock() -> None:
    with sandbox() as tf:
        assert tf.clock.freeze(at="2026-11-25T15:30:00Z") == MOMENT and tf.clock.frozen
        assert tf.clock.advance(timedelta(minutes=1)) == MOMENT + timedelta(minutes=1)
        assert tf.clock.advance(30) == MOMENT + timedelta(seconds=90)
        assert tf.clock.set(MOMENT) == tf.clock.now() == MOMENT
        tf.clock.resume()
        assert not tf.clock.frozen


def test_overrides_configure_the_emulator() -> None:
    with sandbox(seed=3, market_mode=MarketMode.CLOSED) as tf:
        state = tf.state()
        assert (state["seed"], state["market_mode"]) == (3, "closed")
        tf.reset()
        assert tf.state()["market_mode"] == "closed"  # a reset goes back to the config, not to the defaults


def test_accounts_orders_positions_and_the_journal_as_python_calls() -> None:
    with sandbox() as tf:
        assert tf.account("bob", cash="2500.50")["cash"] == 2500.5
        assert [a["id"] for a in tf.accounts()] == ["acc_bob"]
        requests.post(f"{tf.api_url}/orders", headers=tf.headers("bob"), json=ORDER, timeout=10)
        assert [o["status"] for o in tf.orders("bob", status="all")] == ["FILLED"]
        assert [p["quantity"] for p in tf.positions("bob")] == [2]
        assert [e["operation"] for e in tf.journal(path="^/v1/")] == ["createOrder"]
        assert tf.clear_journal() >= 1 and tf.journal() == []
        fault = tf.fault(operation="getAccount", status=503, count=1)
        assert [f["id"] for f in tf.faults()] == [fault["id"]]
        assert tf.clear_faults() == 1


def test_a_refused_control_call_raises_with_the_status_and_the_error() -> None:
    with sandbox() as tf:
        with pytest.raises(ControlPlaneError, match=r"answered 400") as refused:
            tf.account("not a subject!")
        assert refused.value.status == 400 and refused.value.error["field"] == "subject"
        with pytest.raises(ControlPlaneError, match="answered 404"):
            tf.positions("nobody")


def test_the_receiver_keeps_verified_events_and_refuses_the_rest() -> None:
    with sandbox() as tf:
        hooks = tf.webhooks
        body = b'{"id":"evt_x","type":"order.filled"}'

        def post(secret: str, sent: datetime) -> int:
            headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(sent.timestamp())),
                       "webhook-signature": Webhook(secret).sign("msg_1", sent, body)}
            return requests.post(hooks.url, data=body, headers=headers, timeout=10).status_code

        now = tf.clock.now()
        old = (now - timedelta(minutes=6)).replace(microsecond=0)
        assert post("whsec_" + "A" * 32, now) == 400  # another secret
        assert post(hooks.secret, old) == 400  # too old for the emulator's clock
        assert requests.post(hooks.url, data=body, timeout=10).status_code == 400  # unsigned
        assert hooks.events == []
        assert [d.problem for d in hooks.rejected] == ["no signature matches the secret",
                                                       f"timestamp {old.isoformat()} is more than 5 minutes from the "
                                                       "emulator clock", "missing or malformed webhook-id, "
                                                       "webhook-timestamp or webhook-signature"]
        tf.clock.advance(timedelta(days=2))  # the receiver's now is the emulator's: a moved clock still verifies
        tf.trigger("alert.triggered")
        (event,) = hooks.wait_for("alert.triggered")
        assert event["type"] == "alert.triggered" and post(hooks.secret, tf.clock.now()) == 204


def test_wait_for_names_what_arrived_when_it_times_out() -> None:
    with sandbox() as tf:
        started = time.monotonic()
        with pytest.raises(AssertionError, match=r"timed out after 0.2 s waiting for 1 verified order.filled"):
            tf.webhooks.wait_for("order.filled", timeout=0.2)
        assert time.monotonic() - started < 5


def test_the_sandbox_stops_its_servers() -> None:
    with sandbox() as tf:
        url, hook = tf.url, tf.webhooks.url
    for address in (url, hook):
        with pytest.raises(requests.ConnectionError):
            requests.get(address, timeout=2)


def test_the_plugins_register_only_prefixed_fixtures_and_options(tmp_path: Path) -> None:
    """In a project of its own (no conftest of ours), what the installed plugins add to pytest."""
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")

    def pytest_output(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=True).stdout

    ours = re.findall(r"^(\w+)(?: \[\w+ scope\])? -- .*(?:contracts|mock_server)[/\\]\w+\.py:\d+$",
                      pytest_output("--fixtures"), re.M)
    assert "tradefence_sandbox" in ours and "tradefence_target" in ours
    assert [name for name in ours if not name.startswith("tradefence_")] == []
    def options(*args: str) -> set[str]:
        return set(re.findall(r"^ {2}(--[\w-]+)", pytest_output("--help", *args), re.M))

    ours = options() - options("-p", "no:tradefence_contracts", "-p", "no:tradefence_sandbox")
    assert {"--target", "--tradefence-tls"} <= ours
    assert [o for o in ours if not o.startswith(("--tradefence-", "--contract-", "--target"))] == []


def test_the_fixture_in_a_users_project(tmp_path: Path) -> None:
    """Two tests in a user's project, over TLS: the second sees none of what the first did."""
    (tmp_path / "test_user.py").write_text(textwrap.dedent("""
        import requests

        def test_first(tradefence_sandbox):
            tradefence_sandbox.clock.freeze()
            tradefence_sandbox.token("zoe")
            assert [a["id"] for a in tradefence_sandbox.accounts()] == ["acc_zoe"]

        def test_second(tradefence_sandbox):
            assert tradefence_sandbox.accounts() == []
            assert not tradefence_sandbox.clock.frozen
            assert tradefence_sandbox.api_url.startswith("https://")  # --tradefence-tls
            account = requests.get(tradefence_sandbox.api_url + "/account", verify=tradefence_sandbox.ca_path,
                                   headers=tradefence_sandbox.headers("yan"), timeout=10)
            assert account.json()["id"] == "acc_yan"
    """))
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--tradefence-tls"],
                            cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_a_tls_sandbox_serves_https_and_wss_to_clients_that_trust_its_ca() -> None:
    with sandbox(tls=True) as tf:
        assert tf.url.startswith("https://") and tf.stream_url.startswith("wss://") and tf.ca_path
        account = requests.get(f"{tf.api_url}/account", headers=tf.headers("tls"), verify=tf.ca_path, timeout=10)
        assert account.json()["id"] == "acc_tls"
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{tf.api_url}/account", verify=True, timeout=10)  # not a CA anyone else trusts
        stream = websocket.create_connection(tf.stream_url, sslopt={"ca_certs": tf.ca_path}, timeout=10)
        try:
            stream.send(json.dumps({"action": "subscribe", "symbols": ["AAPL"]}))
            assert json.loads(stream.recv())["type"] == "subscription"
        finally:
            stream.close()
        tf.trigger("order.filled")
        assert tf.webhooks.wait_for("order.filled")
