"""Webhooks as a receiver sees them: signed per Standard Webhooks and shaped as the spec's `webhooks` section.

Needs a receiver the target can reach: on an emulator the suite registers its own loopback receiver through
the control plane and triggers each event type; elsewhere it skips and says so.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from contracts.targets import Target
from mock_server.spec.document import SpecDocument
from mock_server.spec.validation import SchemaValidator

EVENTS = {"order.filled": "OrderFilledEvent", "position.closed": "PositionClosedEvent",
          "alert.triggered": "AlertTriggeredEvent"}


class WebhookViolation(AssertionError):
    """A delivered webhook that breaks its contract."""


class Receiver:
    """A loopback HTTP server that records every delivery (headers and raw body) and answers 200."""

    def __init__(self) -> None:
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

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/webhooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def next(self, event_type: str, seconds: float = 15) -> tuple[dict[str, str], bytes]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                headers, body = self.deliveries.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            if json.loads(body).get("type") == event_type:
                return headers, body
        raise WebhookViolation(f"[{event_type}] no delivery within {seconds} s")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver(tradefence_target: Target) -> Iterator[tuple[Receiver, str]]:
    plane = tradefence_target.control_plane()
    if plane is None:
        pytest.skip("needs a webhook receiver the target can reach; the emulator's control plane registers one")
    receiver = Receiver()
    try:
        endpoint = plane.register_webhook(receiver.url)
        try:
            yield receiver, endpoint["secret"]
        finally:
            plane.remove_webhook(endpoint["id"])
    finally:
        receiver.close()
        plane.close()


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_delivered_events_are_signed_and_match_the_spec(receiver: tuple[Receiver, str], tradefence_target: Target,
                                                        tradefence_spec_document: SpecDocument,
                                                        event_type: str) -> None:
    server, secret = receiver
    plane = tradefence_target.control_plane()
    assert plane is not None
    plane.trigger(event_type)
    headers, body = server.next(event_type)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if name not in headers:
            raise WebhookViolation(f"[{event_type}] header {name} missing")
    try:
        Webhook(secret).verify(body, headers)
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
