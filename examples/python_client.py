"""A whole Tradefence client in one script, run against the emulator (`make mock-up`, then
`.venv/bin/python examples/python_client.py [BASE_URL]`).

It does what an integration does, in order: the OAuth 2.0 authorization-code flow with PKCE (`/authorize`,
`/token`), a webhook receiver that verifies Standard Webhooks signatures (registered through the emulator's
`POST /_mock/webhooks`), an order and its status, AI recommendations, a batch, and a few ticks from the
market-data stream; then it waits for the signed `order.filled` of its order. It exits 0 when every step worked.

The base URL comes from the first argument, else TRADEFENCE_BASE_URL, else http://127.0.0.1:8080. The webhook
receiver listens on 127.0.0.1, so the emulator must run on this machine. Needs `requests` and
`websocket-client` (both in `pip install -e '.[dev]'`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import queue
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
import websocket  # websocket-client

CLIENT_ID = "sandbox-client"  # the emulator's pre-provisioned client
CLIENT_SECRET = "sandbox-secret"
REDIRECT_URI = "http://127.0.0.1:5000/callback"  # sandbox-client accepts any loopback redirect URI
TIMEOUT = 10


# -- OAuth 2.0: authorization code with PKCE ---------------------------------------------------------------------

def log_in(base: str, user: str) -> dict[str, Any]:
    """RFC 6749 §4.1 with RFC 7636 PKCE (S256). The emulator approves at once, so the 302 to the redirect URI
    carries the code: a real app would receive it on its callback after the user signs in."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    query = urlencode({"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "response_type": "code",
                       "scope": "trading:read trading:write", "state": state, "login_hint": user,
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    redirect = requests.get(f"{base}/authorize?{query}", allow_redirects=False, timeout=TIMEOUT)
    check(redirect.status_code == 302, f"/authorize answered {redirect.status_code}: {redirect.text[:200]}")
    callback = parse_qs(urlsplit(redirect.headers["Location"]).query)
    check(callback.get("state") == [state], "the state came back changed: not our authorization request")
    check("code" in callback, f"authorization refused: {callback}")

    token = requests.post(f"{base}/token", timeout=TIMEOUT, data={
        "grant_type": "authorization_code", "code": callback["code"][0], "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code_verifier": verifier,
    })
    check(token.status_code == 200, f"/token answered {token.status_code}: {token.text[:200]}")
    return token.json()


# -- webhooks: a receiver that verifies signatures ---------------------------------------------------------------

def verified(secret: str, headers: Any, body: bytes) -> bool:
    """Standard Webhooks: v1 = base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}", keyed with the
    base64-decoded part of `whsec_...`. (Not checking the timestamp's age: the emulator's clock may be moved.)"""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    except (KeyError, ValueError):
        return False
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, candidate.removeprefix("v1,"))
               for candidate in headers.get("webhook-signature", "").split())


class WebhookReceiver:
    """An HTTP server on a free loopback port; verified events go to `events`, refused ones are answered 400."""

    def __init__(self) -> None:
        self.secret = ""  # known once the endpoint is registered
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not verified(receiver.secret, self.headers, body):
                    print(f"webhook {self.headers.get('webhook-id')}: bad signature, refused")
                    self.send_response(400)
                else:
                    receiver.events.put(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet: main() prints what matters
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, kind: str, order_id: str, seconds: float = 15) -> dict[str, Any]:
        while True:
            try:
                event = self.events.get(timeout=seconds)
            except queue.Empty:
                fail(f"no verified {kind} for {order_id} within {seconds} s")
            if event["type"] == kind and event["data"]["order"]["id"] == order_id:
                return event


# -- the market-data stream -------------------------------------------------------------------------------------

def stream_ticks(base: str, token: str, symbols: list[str], count: int) -> list[dict[str, Any]]:
    """Subscribe and return the first `count` quotes and trades. A subscribe is answered with the current quote
    and trade of each symbol at once, so two symbols give four ticks even while the emulator's clock is frozen."""
    url = base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/market-data"
    ws = websocket.create_connection(url, timeout=TIMEOUT, header=[f"Authorization: Bearer {token}"])
    try:
        ws.send(json.dumps({"action": "subscribe", "symbols": symbols}))
        ticks: list[dict[str, Any]] = []
        while len(ticks) < count:
            message = json.loads(ws.recv())
            if message["type"] == "error":
                fail(f"stream error {message['code']}: {message['message']}")
            if message["type"] in ("quote", "trade"):
                ticks.append(message)
        return ticks
    finally:
        ws.close()


# -- the script ---------------------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    base = (argv[1] if len(argv) > 1 else os.environ.get("TRADEFENCE_BASE_URL", "http://127.0.0.1:8080")).rstrip("/")
    user = f"example-py-{secrets.token_hex(4)}"  # a fresh sandbox user (and account) every run

    token = log_in(base, user)
    print(f"authorized as {user}: {token['token_type']} token, scope {token['scope']!r}, "
          f"expires in {token['expires_in']} s")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token['access_token']}"

    with WebhookReceiver() as receiver:
        endpoint = call(requests.post(f"{base}/_mock/webhooks", timeout=TIMEOUT,
                                      json={"url": receiver.url, "events": ["order.filled"]}), 201)
        receiver.secret = endpoint["secret"]
        print(f"webhook endpoint {endpoint['id']} -> {receiver.url}")
        try:
            run(base, api, token["access_token"], receiver)
        finally:
            requests.delete(f"{base}/_mock/webhooks/{endpoint['id']}", timeout=TIMEOUT)
    print("done: every step succeeded")
    return 0


def run(base: str, api: requests.Session, access_token: str, receiver: WebhookReceiver) -> None:
    v1 = f"{base}/v1"
    order = call(api.post(f"{v1}/orders", timeout=TIMEOUT, headers={"Idempotency-Key": secrets.token_hex(16)},
                          json={"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 10}), 201)
    print(f"order {order['id']} placed: {order['side']} {order['quantity']} {order['symbol']} {order['type']}")
    status = call(api.get(f"{v1}/orders/{order['id']}", timeout=TIMEOUT), 200)
    print(f"order {status['id']} status {status['status']}: {status['filled_quantity']} filled "
          f"at {status['average_fill_price']}")

    advice = call(api.post(f"{v1}/ai/recommendations", timeout=TIMEOUT, json={
        "portfolio": [{"symbol": "AAPL", "quantity": 10}, {"symbol": "MSFT", "quantity": 5}],
        "risk_tolerance": "MODERATE", "time_horizon": "30_DAYS"}), 200)
    for item in advice["recommendations"]:
        print(f"recommendation {item['symbol']}: {item['action']} "
              f"(weight {item['current_weight']:.2f} -> {item['target_weight']:.2f}, "
              f"confidence {item['confidence']:.2f})")

    resting = call(api.post(f"{v1}/orders", timeout=TIMEOUT, json={
        "symbol": "MSFT", "type": "LIMIT", "side": "BUY", "quantity": 5, "price": 1.00, "time_in_force": "GTC"}), 201)
    batch = call(api.post(f"{v1}/batch", timeout=TIMEOUT, json={"operations": [
        {"action": "CREATE_ORDER", "data": {"symbol": "NVDA", "type": "MARKET", "side": "BUY", "quantity": 2}},
        {"action": "UPDATE_POSITION", "data": {"symbol": "AAPL", "target_quantity": 15}},
        {"action": "CANCEL_ORDER", "data": {"order_id": resting["id"]}},
    ]}), 200)
    outcomes = ", ".join(f"{r['action']} {r['status']}" for r in batch["results"])
    print(f"batch: {batch['succeeded']} succeeded, {batch['failed']} failed ({outcomes})")
    check(batch["failed"] == 0, f"a batch operation failed: {batch['results']}")

    for tick in stream_ticks(base, access_token, ["AAPL", "MSFT"], 4):
        if tick["type"] == "quote":
            print(f"tick {tick['symbol']} quote bid {tick['bid']} ask {tick['ask']} (seq {tick['seq']})")
        else:
            print(f"tick {tick['symbol']} trade {tick['price']} x {tick['size']} (seq {tick['seq']})")

    event = receiver.wait_for("order.filled", order["id"])
    filled = event["data"]["order"]
    print(f"webhook {event['type']} {event['id']}: signature verified, order {filled['id']} "
          f"{filled['status']} at {filled['average_fill_price']}")


def call(response: requests.Response, expected: int) -> Any:
    """The JSON of a response with the expected status; otherwise stop with the API's error envelope."""
    if response.status_code != expected:
        fail(f"{response.request.method} {response.url} answered {response.status_code}: {response.text[:300]}")
    return response.json()


def check(condition: bool, message: str) -> None:
    if not condition:
        fail(message)


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
