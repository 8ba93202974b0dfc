"""The emulator inside a user's own tests: `with sandbox() as tf:` (scripts, unittest) or the `tradefence_sandbox`
pytest fixture (`mock_server/pytest_plugin.py`), in the spirit of moto's `mock_aws` and pytest-httpserver.

A `Sandbox` is a real emulator on a free loopback port in this process (real HTTP, OAuth tokens, websockets and
signed webhooks), its control plane as Python calls, and a webhook receiver that keeps the deliveries whose
Standard Webhooks signature verifies. Every control call goes over HTTP to `/_mock`, exactly as it would against
`make mock-up`: what a test does here, a curl command does there.

`reset()` makes a used sandbox as good as a new one (same seed, no accounts, the clock back on real time, an empty
journal, no faults, no events) at a fraction of the cost of building one, which is why the fixture keeps one
emulator per session and resets it before each test (docs/performance.md has the figures).
"""

from __future__ import annotations

import hmac
import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import requests
from standardwebhooks import Webhook

from mock_server.app import create_app
from mock_server.config import Config, WebhookConfig
from mock_server.domain.webhooks.signing import derived_secret
from mock_server.serving import serve
from mock_server.serving.tls import LocalCA, server_context
from mock_server.web.lifecycle import DASHBOARD_POLL

__all__ = ["ClockControl", "ControlPlaneError", "Delivery", "Sandbox", "WebhookReceiver", "sandbox"]

DEFAULT_SCOPE = "trading:read trading:write"
TOLERANCE = timedelta(minutes=5)  # Standard Webhooks: a receiver refuses timestamps further than this from its now
JSON = dict[str, Any]


class ControlPlaneError(AssertionError):
    """The control plane refused a call (a bad argument, an unknown account): the answer's status and error."""

    def __init__(self, method: str, path: str, response: requests.Response) -> None:
        self.status = response.status_code
        try:
            self.error: JSON = response.json().get("error", {})
        except ValueError:
            self.error = {}
        super().__init__(f"{method} /_mock{path} answered {self.status}: "
                         f"{self.error.get('message') or response.text[:300]}")


@contextmanager
def sandbox(config: Config | None = None, *, tls: bool = False, **overrides: Any) -> Iterator[Sandbox]:
    """An emulator for the `with` block: `Config()` defaults (seed 42, the market open) unless `config` or
    keyword overrides (`seed=7`, `market_mode=MarketMode.CLOSED`, ...) say otherwise. Always stopped at the end.

    With `tls` (or `config.tls`) it serves HTTPS and WSS, certified by a CA made for this sandbox alone (in a
    temporary directory, gone at the end): clients trust `ca_path` (requests: `verify=tf.ca_path`). With
    `tls_cert`/`tls_key` in the config, that certificate instead (and `ca_path` is None)."""
    with ExitStack() as stack:
        receiver = stack.enter_context(_receiver())
        base = replace(config or Config(), **overrides)
        context, ca_path = None, None
        if tls or base.tls:
            if base.tls_cert:
                context = server_context(Path(base.tls_cert), Path(base.tls_key))
            else:
                ca = LocalCA(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tradefence-ca-"))))
                context, ca_path = ca.server_context(), str(ca.cert_path)
        # The receiver is a configured endpoint: it survives `reset()`, and its secret is known before the start.
        secret = derived_secret(base.seed, "tradefence_sandbox")
        config = replace(base, port=0, webhooks=(*base.webhooks, WebhookConfig(receiver.url, secret)))
        app = create_app(config)
        stack.callback(lambda: app.extensions["tradefence"].close(grace=0))
        url = stack.enter_context(serve(app, tls=context))
        receiver.bind(secret, lambda: app.extensions["tradefence"].clock.now())
        found = Sandbox(url, config, receiver, ca_path)
        stack.callback(found.close)
        yield found


class Sandbox:
    """An emulator on `url` (`api_url` for the client under test, `stream_url` for the market-data websocket);
    `ca_path` is the CA certificate to trust when it serves TLS."""

    def __init__(self, url: str, config: Config, webhooks: WebhookReceiver, ca_path: str | None = None) -> None:
        self.url = url
        self.ca_path = ca_path
        self.api_url = f"{url}/v1"
        self.stream_url = "ws" + url.removeprefix("http") + "/market-data"
        self.config = config
        self.webhooks = webhooks
        self._http = requests.Session()
        self.clock = ClockControl(self._call)

    # -- tokens ---------------------------------------------------------------------------------------------------

    def token(self, subject: str | None = None, scope: str = DEFAULT_SCOPE, expires_in: int = 3600) -> str:
        """An access token for `subject` (default: the config's `default_subject`), as the OAuth flow would issue
        it; the subject's account is opened if it has none."""
        body = {"subject": subject or self.config.default_subject, "scope": scope, "expires_in": expires_in}
        return str(self._call("POST", "/tokens", body)["access_token"])

    def headers(self, subject: str | None = None, scope: str = DEFAULT_SCOPE) -> dict[str, str]:
        """`{"Authorization": "Bearer <token>"}` for `subject`."""
        return {"Authorization": f"Bearer {self.token(subject, scope)}"}

    # -- the whole emulator -------------------------------------------------------------------------------------

    def reset(self) -> None:
        """As good as a new emulator with this config: fresh services from the seed (prices, ids, accounts,
        orders, tokens, faults, events, rate limits, market mode), the clock on real time and running, the
        journal empty, the receiver empty and answering 204."""
        state = self._call("POST", "/seed", {"seed": self.config.seed})
        if state["clock"]["frozen"]:
            self.clock.resume()
        self.clock.set(datetime.now(UTC))
        self._call("DELETE", "/journal")
        self.webhooks.clear()

    def state(self) -> JSON:
        """Seed, clock, market mode, counts of accounts, orders, positions and faults."""
        return self._call("GET", "/state")

    def market(self, mode: str) -> JSON:
        """`open` (always open), `closed`, or `nyse` (real NYSE hours on the emulator clock); returns the market
        clock."""
        return self._call("PUT", "/market", {"mode": mode})

    def rate_limit(self, capacity: int, refill_per_second: float) -> JSON:
        return self._call("PUT", "/rate-limit", {"capacity": capacity, "refill_per_second": refill_per_second})

    # -- accounts -------------------------------------------------------------------------------------------------

    def account(self, subject: str, cash: float | str | None = None) -> JSON:
        """Open `subject`'s account (with `cash`, default the config's starting cash), or set an existing
        account's cash."""
        body: JSON = {"subject": subject}
        if cash is not None:
            body["cash"] = float(cash)
        return self._call("POST", "/accounts", body)

    def accounts(self) -> list[JSON]:
        return list(self._call("GET", "/accounts")["data"])

    def orders(self, subject: str, **query: Any) -> list[JSON]:
        """`subject`'s orders, newest first; `status=` (`all` by default, `open`, `closed`, `filled`, ...),
        `symbol=`, `side=`, `limit=`."""
        return list(self._call("GET", f"/accounts/acc_{subject}/orders", params=query)["data"])

    def positions(self, subject: str) -> list[JSON]:
        return list(self._call("GET", f"/accounts/acc_{subject}/positions")["data"])

    # -- faults ---------------------------------------------------------------------------------------------------

    def fault(self, **fault: Any) -> JSON:
        """Inject a fault (`operation=`, `path=`, `error_code=`, `status=`, `latency_ms=`, `drop_connection=`,
        `stream_disconnect_after=`, `retry_after=`, `count=`, `probability=`: `FaultRequest` in openapi.yaml)."""
        return self._call("POST", "/faults", fault)

    def faults(self) -> list[JSON]:
        """Active faults, with how often each fired (`applied`) and what is left (`remaining`)."""
        return list(self._call("GET", "/faults")["data"])

    def clear_faults(self) -> int:
        return int(self._call("DELETE", "/faults")["deleted"])

    # -- the request journal ------------------------------------------------------------------------------------

    def journal(self, **query: Any) -> list[JSON]:
        """Requests received, newest first, secrets masked; `method=`, `path=` (a regular expression),
        `operation=` (an operationId), `status=`, `limit=`. The sandbox's own control calls are in it too."""
        return list(self._call("GET", "/journal", params=query)["data"])

    def clear_journal(self) -> int:
        return int(self._call("DELETE", "/journal")["deleted"])

    # -- webhook events -----------------------------------------------------------------------------------------

    def trigger(self, event_type: str, data: Mapping[str, Any] | None = None,
                account_id: str | None = None) -> JSON:
        """Force a webhook event (`order.filled`, `position.closed`, `alert.triggered`); `data` overrides parts of
        the made-up subject. Returns the event record; `webhooks.wait_for` sees it arrive."""
        body: JSON = {"type": event_type}
        if data is not None:
            body["data"] = dict(data)
        if account_id is not None:
            body["account_id"] = account_id
        return self._call("POST", "/events", body)

    def deliveries(self, **query: Any) -> list[JSON]:
        """The emulator's side of webhook delivery: events newest first with every attempt (`status=`, `type=`)."""
        return list(self._call("GET", "/webhooks/deliveries", params=query)["data"])

    # -- plumbing -------------------------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None, *,
              params: Mapping[str, Any] | None = None) -> JSON:
        # Reads are watching, which never fills the journal (as the dashboard's polls): the journal keeps what
        # the code under test sent, and the moves a test made.
        headers = dict([DASHBOARD_POLL]) if method == "GET" else None
        # verify per request: an environment's REQUESTS_CA_BUNDLE would win over a session's own setting.
        response = self._http.request(method, f"{self.url}/_mock{path}", json=body, params=params, headers=headers,
                                      timeout=30, verify=self.ca_path or True)
        if response.status_code >= 300:
            raise ControlPlaneError(method, path, response)
        return dict(response.json())


Call = Callable[..., JSON]


class ClockControl:
    """The emulator's one clock: every timestamp, fill, expiry, tick and webhook retry follows it."""

    def __init__(self, call: Call) -> None:
        self._call = call

    def now(self) -> datetime:
        return _parse_time(self._call("GET", "/clock")["now"])

    @property
    def frozen(self) -> bool:
        return bool(self._call("GET", "/clock")["frozen"])

    def freeze(self, at: datetime | str | None = None) -> datetime:
        """Stop the clock (at `at`, when given): the same instant until it is moved."""
        frozen = self._move({"action": "freeze"})
        return frozen if at is None else self.set(at)

    def resume(self) -> datetime:
        return self._move({"action": "resume"})

    def set(self, to: datetime | str) -> datetime:
        """Move to `to` (an aware datetime or RFC 3339 text); resting orders are re-evaluated at its prices."""
        text = to if isinstance(to, str) else to.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return self._move({"action": "set", "to": text})

    def advance(self, seconds: float | timedelta) -> datetime:
        amount = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
        return self._move({"action": "advance", "seconds": amount})

    def _move(self, command: JSON) -> datetime:
        return _parse_time(self._call("POST", "/clock", command)["now"])


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Delivery:
    """One webhook request as the receiver got it; `verified` says whether its signature and timestamp passed."""

    headers: dict[str, str]  # lower-case names
    body: bytes
    verified: bool
    problem: str | None  # why it was refused, when it was

    @property
    def event(self) -> JSON:
        return dict(json.loads(self.body))

    @property
    def id(self) -> str:
        return self.headers.get("webhook-id", "")


class WebhookReceiver:
    """An HTTP endpoint the emulator delivers every event to, verifying each delivery as a Standard Webhooks
    receiver does: an HMAC signature over `{id}.{timestamp}.{body}` with `secret`, and a timestamp within five
    minutes of now, where now is the emulator's clock (a test that moves the clock moves the receiver's time).

    It answers `status` (204; set 500 or 410 to see retries or a disabled endpoint) to verified deliveries and 400
    to the others, which `rejected` keeps, so a test can also check that nothing unverifiable arrived."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.secret = ""
        self.status = 204
        self._now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._cond = threading.Condition()
        self._deliveries: list[Delivery] = []

    def bind(self, secret: str, now: Callable[[], datetime]) -> None:
        self.secret, self._now = secret, now

    @property
    def events(self) -> list[JSON]:
        """The events of verified deliveries, in arrival order (a retried event appears once per delivery)."""
        return [delivery.event for delivery in self.deliveries if delivery.verified]

    @property
    def deliveries(self) -> list[Delivery]:
        with self._cond:
            return list(self._deliveries)

    @property
    def rejected(self) -> list[Delivery]:
        return [delivery for delivery in self.deliveries if not delivery.verified]

    def wait_for(self, event_type: str | None = None, count: int = 1, timeout: float = 10.0) -> list[JSON]:
        """The first `count` verified events (of `event_type`), once they have arrived; AssertionError after
        `timeout` seconds, naming what did arrive."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [d.event for d in self._deliveries
                         if d.verified and (event_type is None or d.event.get("type") == event_type)]
                if len(found) >= count:
                    return found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(d.event.get("type"), d.verified, d.problem) for d in self._deliveries]
                    raise AssertionError(f"timed out after {timeout} s waiting for {count} verified "
                                         f"{event_type or 'event'}(s); received: {seen}")
                self._cond.wait(remaining)

    def clear(self) -> None:
        with self._cond:
            self._deliveries.clear()
            self.status = 204

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        problem = self._problem(headers, body)
        with self._cond:
            self._deliveries.append(Delivery(headers, body, problem is None, problem))
            self._cond.notify_all()
            return self.status if problem is None else 400

    def _problem(self, headers: Mapping[str, str], body: bytes) -> str | None:
        message_id, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp", "")
        signatures = headers.get("webhook-signature", "").split()
        if not (message_id and stamp.isdigit() and signatures):
            return "missing or malformed webhook-id, webhook-timestamp or webhook-signature"
        sent = datetime.fromtimestamp(int(stamp), UTC)
        if abs(self._now() - sent) > TOLERANCE:
            return f"timestamp {sent.isoformat()} is more than 5 minutes from the emulator clock"
        expected = Webhook(self.secret).sign(message_id, sent, body)
        if not any(hmac.compare_digest(expected, signature) for signature in signatures):
            return "no signature matches the secret"
        try:
            json.loads(body)
        except ValueError:
            return "the body is not JSON"
        return None


@contextmanager
def _receiver() -> Iterator[WebhookReceiver]:
    """The receiver as a WSGI app on the emulator's own server, on a free loopback port."""
    holder: list[WebhookReceiver] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        status = holder[0].receive(headers, body) if environ["REQUEST_METHOD"] == "POST" else 405
        start_response(f"{status} {HTTPStatus(status).phrase}", [("Content-Length", "0")])
        return [b""]

    with serve(app) as url:
        holder.append(WebhookReceiver(url + "/webhooks"))
        yield holder[0]

