"""One contract run: its options, and the state every test of the run shares — the polite transport, the secrets
to mask, what it waited — so that what the run did can be summed up (and undone) at its end."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from contracts.checking import CheckedSession, OperationMatcher, violation
from contracts.credentials import Credentials, TokenFile
from contracts.secrets import Secrets
from contracts.targets import Target
from contracts.transport import DEFAULT_WAIT_BUDGET, Politeness, TargetAdapter
from mock_server.spec.document import SpecDocument

DEFAULT_EXAMPLES = 25
EXPIRY_SLACK = timedelta(seconds=5)  # clock skew between the run and the target


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

    @classmethod
    def from_config(cls, config: pytest.Config, environ: Mapping[str, str] = os.environ) -> RunOptions:
        ca = config.getoption("--contract-ca") or environ.get("REQUESTS_CA_BUNDLE") or environ.get("SSL_CERT_FILE")
        if ca and not Path(ca).is_file():
            raise pytest.UsageError(f"--contract-ca: no CA certificate file at {ca}")
        return cls(target=config.getoption("--target"), examples=config.getoption("--contract-examples"),
                   seed=config.getoption("--contract-seed"), destructive=config.getoption("--contract-destructive"),
                   wait_budget=config.getoption("--contract-wait-budget"), ca=ca or None,
                   webhook_url=config.getoption("--contract-webhook-url"),
                   token_file=TokenFile(Path(path)) if (path := config.getoption("--contract-token-file")) else None)

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

    def __post_init__(self) -> None:
        self.politeness = Politeness(self.options.wait_budget, seed=self.options.seed, now=self.now)
        self.matcher = OperationMatcher(self.document, api_prefix=urlsplit(self.target.api_url).path,
                                        root_prefix=urlsplit(self.target.auth_url).path)
        self.adapter = TargetAdapter(self.politeness, observe=self.observe, describe=self.describe)
        self.impatient = TargetAdapter(self.politeness, observe=self.observe, describe=self.describe, patient=False)

    def describe(self, request: requests.PreparedRequest) -> str:
        path = urlsplit(request.url).path
        operation = self.matcher.match(request.method or "GET", path)
        return operation.operation_id if operation else f"{request.method} {path}"

    def observe(self, response: requests.Response) -> None:
        """Every final answer the run gets: tokens from the auth server are secrets from now on; a 401 or 403 for
        the run's own valid token is drift, not a refusal to accept."""
        if response.status_code == 200 and urlsplit(str(response.request.url)).path.endswith("/token"):
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
            operation = self.matcher.match(response.request.method or "GET", urlsplit(response.request.url).path)
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
        if now < expires_at - EXPIRY_SLACK:
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

    def summary(self) -> list[str]:
        return [f"target: {self.target.name} (API {self.target.api_url})",
                f"polite client: {self.politeness.summary()}"]
