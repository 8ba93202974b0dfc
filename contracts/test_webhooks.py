"""Webhooks as a receiver sees them: signed per Standard Webhooks and shaped as the spec's `webhooks` section.

Needs a receiver the target can reach. On an emulator the suite registers its own loopback receiver through the
control plane and forces each event type. On a real target the user names, with `--contract-webhook-url`, a
public URL registered with Tradefence as the account's webhook endpoint that forwards (a tunnel) to the receiver
the suite starts on `127.0.0.1:--contract-webhook-port`, and gives the endpoint's signing secret in
`TRADEFENCE_WEBHOOK_SECRET`; the suite then causes the events by trading one share of a symbol the account does
not hold (bought, then sold back: `order.filled`, `position.closed`) and picks its own deliveries out of whatever
else arrives. `alert.triggered` cannot be caused through the public API and runs on emulators only. Without a
receiver the target can reach these tests skip, saying what to pass.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from contracts.checking import CheckedSession, violation
from contracts.run import ContractRun
from mock_server.spec.document import SpecDocument
from mock_server.spec.validation import SchemaValidator

EVENTS = {"order.filled": "OrderFilledEvent", "position.closed": "PositionClosedEvent",
          "alert.triggered": "AlertTriggeredEvent"}
CAUSED_BY_TRADING = ("order.filled", "position.closed")

Event = dict[str, Any]


class WebhookViolation(AssertionError):
    """A delivered webhook that breaks its contract."""


class Receiver:
    """An HTTP server on loopback that records every delivery (headers and raw body) and answers 200."""

    def __init__(self, port: int = 0) -> None:
        self.deliveries: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.deliveries.put(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/webhooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def next(self, event_type: str, wanted: Callable[[Event], bool], seconds: float = 15) -> tuple[dict[str, str],
                                                                                                 bytes]:
        """The first delivery of `event_type` that `wanted` picks (others on the account are passed over)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                headers, body = self.deliveries.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            try:
                event = json.loads(body)
            except ValueError:
                raise WebhookViolation(f"[{event_type}] a delivery that is not JSON: {body[:200]!r}") from None
            if event.get("type") == event_type and wanted(event):
                return headers, body
        raise WebhookViolation(f"[{event_type}] no delivery within {seconds} s")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class Endpoint:
    """A receiver the target delivers to, its signing secret, and how a test makes an event happen: it returns
    what picks that event's delivery out of the others."""

    receiver: Receiver
    secret: str
    cause: Callable[[str], Callable[[Event], bool]]


@pytest.fixture
def endpoint(tradefence_run: ContractRun, tradefence_api: CheckedSession,
             request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    plane = tradefence_run.target.control_plane()
    if plane is not None:
        receiver = Receiver()
        try:
            registered = plane.register_webhook(receiver.url)
            try:
                yield Endpoint(receiver, registered["secret"], lambda kind: forced(plane.trigger(kind)))
            finally:
                plane.remove_webhook(registered["id"])
        finally:
            receiver.close()
            plane.close()
        return
    if not tradefence_run.options.webhook_url:
        pytest.skip("needs a receiver the target can reach: pass --contract-webhook-url URL (a public URL, registered "
                    "as the account's webhook endpoint, that forwards to 127.0.0.1:--contract-webhook-port)")
    secret = os.environ.get("TRADEFENCE_WEBHOOK_SECRET", "")
    if not secret:
        pytest.skip("needs the webhook endpoint's signing secret in TRADEFENCE_WEBHOOK_SECRET (whsec_...)")
    tradefence_run.secrets.add(secret, "$WEBHOOK_SECRET")
    receiver = Receiver(request.config.getoption("--contract-webhook-port"))
    try:
        yield Endpoint(receiver, secret, lambda kind: traded(tradefence_api, tradefence_run, kind))
    finally:
        receiver.close()


def forced(event: Event) -> Callable[[Event], bool]:
    return lambda delivered: delivered.get("id") == event["id"]


def traded(api: CheckedSession, run: ContractRun, kind: str) -> Callable[[Event], bool]:
    """Buy one share of a symbol the account does not hold and sell it back: the order fills, the position closes."""
    if kind not in CAUSED_BY_TRADING:
        pytest.skip(f"{kind} cannot be caused through the public API; it is checked on emulators")
    if not api.get("/market/clock").json()["is_open"]:
        pytest.skip("the market is closed: no order fills, so no event to deliver")
    held = {p["symbol"] for p in api.get("/positions").json()["data"]}
    symbol = next((s for s in run.symbols() if s not in held), None)
    if symbol is None:
        pytest.skip("the account holds every symbol the run may trade: selling one back would not close a position")
    orders = []
    for side in ("BUY", "SELL"):
        response = api.post("/orders", json={"symbol": symbol, "type": "MARKET", "side": side, "quantity": 1,
                                             "client_order_id": run.ledger.next_client_order_id()})
        if response.status_code != 201 or response.json()["status"] != "FILLED":
            raise violation("createOrder", "a market order for one share fills", response, "expected 201 FILLED")
        orders.append(response.json())
    if kind == "order.filled":
        return lambda event: event["data"]["order"]["id"] == orders[0]["id"]
    return lambda event: event["data"]["position"]["symbol"] == symbol


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_delivered_events_are_signed_and_match_the_spec(endpoint: Endpoint, tradefence_spec_document: SpecDocument,
                                                        event_type: str) -> None:
    wanted = endpoint.cause(event_type)
    headers, body = endpoint.receiver.next(event_type, wanted)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if name not in headers:
            raise WebhookViolation(f"[{event_type}] header {name} missing")
    try:
        Webhook(endpoint.secret).verify(body, headers)
    except WebhookVerificationError as exc:
        raise WebhookViolation(f"[{event_type}] signature does not verify with the endpoint's secret: {exc}") from None
    try:
        Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)
    except WebhookVerificationError:
        pass
    else:
        raise WebhookViolation(f"[{event_type}] a wrong secret verifies: the signature proves nothing")
    event = json.loads(body)
    if headers["webhook-id"] != event["id"]:
        raise WebhookViolation(f"[{event_type}] webhook-id {headers['webhook-id']} is not the event id")
    schema = tradefence_spec_document.schema_ref(EVENTS[event_type])
    problems = SchemaValidator(tradefence_spec_document, schema).errors(event)
    if problems:
        raise WebhookViolation(f"[{event_type}] payload breaks {EVENTS[event_type]}: {problems[0].message}")
