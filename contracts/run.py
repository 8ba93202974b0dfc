"""One contract run: its options, and the state every test of the run shares — the polite transport, the secrets
to mask, what it waited — so that what the run did can be summed up (and undone) at its end."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote as quote_path
from urllib.parse import urlsplit

import pytest
import requests

from contracts.checking import CheckedSession, OperationMatcher, request_path, violation
from contracts.credentials import Credentials, TokenFile
from contracts.report import Finding, render
from contracts.safety import (
    DEFAULT_BUDGET,
    Cleanup,
    Guard,
    Holdings,
    Ledger,
    Shaper,
    clean_up,
    compact,
    read_holdings,
    run_prefix,
    undo,
)
from contracts.secrets import Secrets
from contracts.strategies import SYMBOLS
from contracts.targets import Target
from contracts.transport import DEFAULT_WAIT_BUDGET, Politeness, TargetAdapter
from mock_server.spec.document import SpecDocument

DEFAULT_EXAMPLES = 25
CLOCK_SKEW = timedelta(minutes=5)  # how far the target's clock may be from the run's
QUOTE_KEPT = timedelta(seconds=30)  # how long a quote serves the budget check; the margin covers the moves
CLEANUP_WAIT_RESERVE = 120.0  # seconds the cleanup may wait beyond a spent wait budget
# The answers that create or show orders, which keep the run's ledger up to date.
LEDGER_OPERATIONS = frozenset({"createOrder", "updatePosition", "batch", "getOrder", "cancelOrder",
                               "listOrders"})


class TokenOutlived(AssertionError):
    """Not drift: the run lasted longer than its access token, and it refreshes only once."""


@dataclass(frozen=True)
class RunOptions:
    """What the user asked for on the command line (`--target`, `--contract-…`)."""

    target: str = "mock"
    examples: int = DEFAULT_EXAMPLES
    seed: int = 1234
    destructive: bool = False
    wait_budget: float = DEFAULT_WAIT_BUDGET
    ca: str | None = None
    webhook_url: str | None = None
    token_file: TokenFile | None = None
    budget: Decimal = DEFAULT_BUDGET
    report: str | None = None

    @classmethod
    def from_config(cls, config: pytest.Config, environ: Mapping[str, str] = os.environ) -> RunOptions:
        ca = config.getoption("--contract-ca") or environ.get("REQUESTS_CA_BUNDLE") or environ.get("SSL_CERT_FILE")
        if ca and not Path(ca).is_file():
            raise pytest.UsageError(f"--contract-ca: no CA certificate file at {ca}")
        return cls(target=config.getoption("--target"), examples=config.getoption("--contract-examples"),
                   seed=config.getoption("--contract-seed"), destructive=config.getoption("--contract-destructive"),
                   wait_budget=config.getoption("--contract-wait-budget"), ca=ca or None,
                   webhook_url=config.getoption("--contract-webhook-url"),
                   token_file=TokenFile(Path(path)) if (path := config.getoption("--contract-token-file")) else None,
                   budget=Decimal(str(config.getoption("--contract-budget"))),
                   report=config.getoption("--contract-report"))

    @property
    def verify(self) -> str | bool:
        """For `requests`: the CA bundle that signs an https:// target, or the system's."""
        return self.ca or True

    @property
    def sslopt(self) -> dict[str, str]:
        """For websocket-client: the same CA for wss://."""
        return {"ca_certs": self.ca} if self.ca else {}


@dataclass
class ContractRun:
    options: RunOptions
    target: Target
    document: SpecDocument
    secrets: Secrets = field(default_factory=Secrets)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    credentials: Credentials | None = None  # once the run has logged in
    politeness: Politeness = field(init=False)
    matcher: OperationMatcher = field(init=False)
    adapter: TargetAdapter = field(init=False)
    impatient: TargetAdapter = field(init=False)
    ledger: Ledger = field(init=False)
    guard: Guard = field(init=False)
    cleanup: Cleanup | None = None  # what the cleanup at the end did
    findings: list[Finding] = field(default_factory=list)  # what failed tests found, for the drift report
    outcomes: Counter[str] = field(default_factory=Counter)
    skips: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.politeness = Politeness(self.options.wait_budget, seed=self.options.seed, now=self.now)
        self.matcher = OperationMatcher(self.document, api_prefix=urlsplit(self.target.api_url).path,
                                        root_prefix=urlsplit(self.target.auth_url).path)
        self.started = self.now()
        self.ledger = Ledger(run_prefix(self.started))
        # The budget guards a user's account; an emulator's account is the suite's own, and --contract-destructive
        # is the user accepting checks that may cost more.
        budget = None if self.target.is_emulator or self.options.destructive else self.options.budget
        self.guard = Guard(self.document, self.ledger, holdings=self.holdings, ask=self.ask, budget=budget)
        self.adapter = TargetAdapter(self.politeness, guard=self.check_request, observe=self.observe,
                                     describe=self.describe, verify=self.options.verify)
        self.impatient = TargetAdapter(self.politeness, guard=self.check_request, observe=self.observe,
                                       describe=self.describe, patient=False, verify=self.options.verify)
        self.shaper = Shaper(self.document, self.ledger, self.holdings, self.symbols, small=budget is not None)
        self._holdings: Holdings | None = None
        self._asks: dict[str, tuple[datetime, Decimal | None]] = {}

    def _own_token(self, request: requests.PreparedRequest) -> bool:
        return self.credentials is not None and \
            request.headers.get("Authorization") == f"Bearer {self.credentials.access_token}"

    def check_request(self, request: requests.PreparedRequest) -> None:
        """Before a request with the run's token is sent: is it the run's to send?"""
        operation = self.matcher.match(request.method or "GET", request_path(request))
        if operation is not None and self._own_token(request):
            self.guard.check(operation, request)

    def holdings(self) -> Holdings:
        """The account as its owner left it, read once before the run first trades."""
        if self._holdings is None:
            with self.api() as api:
                self._holdings = read_holdings(api, self.target.api_url)
        return self._holdings

    def symbols(self) -> tuple[str, ...]:
        """The symbols the run may trade: the suite's usual ones that the account's owner neither holds nor has an
        order on."""
        taken = self.holdings().symbols
        return tuple(symbol for symbol in SYMBOLS if symbol not in taken)

    def ask(self, symbol: str) -> Decimal | None:
        """The current ask (kept for a short while), or None for a symbol the target does not quote."""
        now = self.now()
        kept = self._asks.get(symbol)
        if kept is None or now - kept[0] > QUOTE_KEPT:
            with self.api() as api:
                quote = api.get(f"{self.target.api_url}/market/quotes/{quote_path(symbol)}", timeout=15)
            ask = Decimal(str(quote.json()["ask"])) if quote.status_code == 200 else None
            kept = self._asks[symbol] = (now, ask)
        return kept[1]

    def api(self) -> requests.Session:
        """A plain session with the run's token (for the run's own bookkeeping: pre-flight, quotes, cleanup)."""
        session = self.http()
        if self.credentials is not None:
            session.headers.update(self.credentials.headers)
        return session

    def clean_up(self) -> None:
        """Undo what the run did on the account: cancel its open orders, sell back what it bought."""
        if self.credentials is None or (not self.ledger.orders and self._holdings is None):
            return
        self.politeness.reserve = CLEANUP_WAIT_RESERVE  # a spent wait budget must not stop the cleanup
        with self.api() as api:
            clock = api.get(f"{self.target.api_url}/market/clock", timeout=15)
            market_open = clock.status_code == 200 and clock.json().get("is_open") is True
            self.cleanup = clean_up(api, self.target.api_url, self.ledger, since=self.started - CLOCK_SKEW,
                                    market_open=market_open)

    def undo(self, ids: list[str]) -> Cleanup:
        """Undo what these orders of the run did (a test's or an example's own): cancel, sell back."""
        with self.api() as api:
            clock = api.get(f"{self.target.api_url}/market/clock", timeout=15)
            market_open = clock.status_code == 200 and clock.json().get("is_open") is True
            return undo(api, self.target.api_url, self.ledger, ids, market_open=market_open)

    def trading_skip_reason(self) -> str | None:
        """Why the run must not trade on this account, if it must not: too little buying power for its budget, or
        no symbol left that the account's owner neither holds nor trades."""
        holdings = self.holdings()
        budget = self.guard.budget
        if budget is not None and holdings.buying_power < budget:
            return (f"the account's buying power ${holdings.buying_power:,.2f} is below the run's budget "
                    f"${budget:,.2f} (--contract-budget): trading tests skipped")
        if not self.symbols():
            return "the account's owner holds or trades every symbol the suite trades: trading tests skipped"
        return None

    def operation_named(self, label: str) -> str:
        """schemathesis's `POST /orders` → `createOrder` (the label itself when the spec has no such operation)."""
        method, _, path = label.partition(" ")
        return next((op.operation_id for op in self.document.operations if op.method == method and op.path == path),
                    label)

    def describe(self, request: requests.PreparedRequest) -> str:
        path = request_path(request)
        operation = self.matcher.match(request.method or "GET", path)
        return operation.operation_id if operation else f"{request.method} {path}"

    def observe(self, response: requests.Response) -> None:
        """Every final answer the run gets: tokens from the auth server are secrets from now on; orders the run
        created go into its ledger; a 401 or 403 for the run's own valid token is drift, not a refusal to accept."""
        operation = self.matcher.match(response.request.method or "GET", request_path(response.request))
        if operation is not None and operation.operation_id in LEDGER_OPERATIONS and self._own_token(response.request):
            with contextlib.suppress(ValueError):
                self.ledger.observe(operation.operation_id, response.status_code, response.json())
        if response.status_code == 200 and request_path(response.request).endswith("/token"):
            try:
                body = response.json()
            except ValueError:
                return
            if isinstance(body, dict):
                self.secrets.add(body.get("access_token"), "$TOKEN")
                self.secrets.add(body.get("refresh_token"), "$REFRESH_TOKEN")
        credentials = self.credentials
        if credentials is not None and response.status_code in (401, 403) \
                and response.request.headers.get("Authorization") == f"Bearer {credentials.access_token}":
            self._refused_own_token(response, credentials)

    def _refused_own_token(self, response: requests.Response, credentials: Credentials) -> None:
        what = self.describe(response.request)
        if response.status_code == 403:
            operation = self.matcher.match(response.request.method or "GET", request_path(response.request))
            if operation is not None and set(operation.scopes) <= credentials.scopes:
                raise violation(what, "scopes honoured", response,
                                f"403 for the run's token, which holds {' '.join(sorted(credentials.scopes))}; "
                                f"{what} needs {' '.join(operation.scopes)}")
            return
        expires_at = credentials.expires_at
        if expires_at is None or credentials.issued_at is None:
            raise violation(what, "token accepted", response, "401 for the run's own access token")
        now = self.now()
        age = (now - credentials.issued_at).total_seconds()
        if now < expires_at - CLOCK_SKEW:
            raise violation(what, "token lifetime", response,
                            f"401 for the run's access token {age:.0f} s after it was issued with expires_in "
                            f"{credentials.expires_in:.0f}: it died before its time (token-lifetime drift)")
        raise TokenOutlived(f"[{what}] the run's access token expired (expires_in {credentials.expires_in:.0f} s) "
                            f"{age:.0f} s into the run; the suite refreshes once per run: make the run shorter "
                            "(--contract-examples) or the token longer-lived")

    def http(self) -> requests.Session:
        """A plain session on the run's transport (schemathesis sends through it)."""
        session = requests.Session()
        self._equip(session)
        return session

    def session(self, base_url: str, *, patient: bool = True) -> CheckedSession:
        """A spec-checked session on the run's transport; an impatient one hands back every 429 at once."""
        session = CheckedSession(base_url, self.document, matcher=self.matcher,
                                 transport=self.adapter if patient else self.impatient)
        session.verify = self.options.verify
        return session

    def _equip(self, session: requests.Session) -> None:
        session.mount("http://", self.adapter)
        session.mount("https://", self.adapter)
        session.verify = self.options.verify

    def report(self) -> str:
        """The drift report (Markdown), unmasked: the caller masks it on its way out. It lists every order id."""
        tagged = [i for i in self.ledger.client_order_ids() if self.ledger.owns(i)]
        facts = [("Target", f"{self.target.name} (API `{self.target.api_url}`)"),
                 ("Started", self.started.isoformat(timespec="seconds")),
                 *((line.split(": ", 1)[0].capitalize(), line.split(": ", 1)[1]) for line in self.summary()[1:]
                   if ": " in line and not line.startswith(" ") and not line.startswith("orders placed")),
                 ("Orders placed", f"{len(tagged)}: `{compact(tagged, self.ledger.prefix)}`" if tagged else
                  f"none (prefix `{self.ledger.prefix}`)")]
        return render(title=f"Tradefence contract run against {self.target.name}", facts=facts, found=self.findings,
                      outcomes=self.outcomes, skips=self.skips)

    def summary(self) -> list[str]:
        lines = [f"target: {self.target.name} (API {self.target.api_url})",
                 f"polite client: {self.politeness.summary()}"]
        tagged = [i for i in self.ledger.client_order_ids() if self.ledger.owns(i)]
        lines.append(f"orders placed: {len(tagged)} with client_order_id prefix {self.ledger.prefix}"
                     + (f", {min(tagged)} … {max(tagged)} (every one in --contract-report)" if tagged else ""))
        if (untagged := len(self.ledger.orders) - len(tagged)) > 0:
            lines.append(f"  and {untagged} the target placed for the run's position updates (no client_order_id)")
        if self.guard.held_back:
            lines.append(f"held back (not the run's to send): {len(self.guard.held_back)} requests, e.g. "
                         f"{self.guard.held_back[0]}")
        if self.cleanup is not None:
            sold = ", ".join(f"{q} {s}" for s, q in sorted(self.cleanup.sold.items())) or "nothing"
            lines.append(f"cleanup: cancelled {self.cleanup.cancelled} open orders of the run; sold back {sold}")
            lines.extend(f"LEFT BEHIND: {line}" for line in self.cleanup.left)
        return lines
