"""What `tradefence-mock` prints when it starts: where everything is and how to get in, in one screen.

The banner is data first (a title, labelled rows, warnings), rendered in one place, so that a feature adds its
line by appending a row in `start_banner` and the layout stays one thing. The first line keeps its historic
form (`Tradefence Sandbox on URL (seed N)`): scripts and tests read the URL from it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mock_server.domain.oauth.clients import SANDBOX_CLIENT

if TYPE_CHECKING:
    from mock_server.config import Config
    from mock_server.domain.persistence import StateStore


@dataclass
class Banner:
    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)  # (label, text): one aligned line each
    warnings: list[str] = field(default_factory=list)  # printed first, each on a line of its own

    def add(self, label: str, text: str) -> None:
        self.rows.append((label, text))

    def render(self) -> str:
        width = max((len(label) for label, _ in self.rows), default=0)
        lines = [f"WARNING: {warning}" for warning in self.warnings]
        lines.append(self.title)
        lines += [f"  {label.ljust(width)}  {text}" for label, text in self.rows]
        lines.append("Ctrl-C stops it.")
        return "\n".join(lines)


def base_url(host: str, port: int, scheme: str = "http") -> str:
    """A URL for a bound address (an IPv6 literal in brackets)."""
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def start_banner(config: Config, port: int, store: StateStore | None = None, tls: str = "", *,
                 made_control_token: bool = False) -> Banner:
    """Every URL a client needs, the pre-provisioned client, a token in one command, the webhook endpoints and
    their secrets (only those the emulator made: a secret the user chose stays out of terminal logs), and the
    state file. `tls`: the certificate served and how to trust it (HTTPS and WSS then). Beyond loopback: a
    warning, and the control token (printed only when the emulator made it)."""
    base = base_url(config.host, port, "https" if tls else "http")
    banner = Banner(f"Tradefence Sandbox on {base} (seed {config.seed})")
    banner.add("API", f"{base}/v1")
    banner.add("Auth", f"{base}/authorize  {base}/token")
    banner.add("Stream", f"ws{base.removeprefix('http')}/market-data")
    banner.add("Dashboard", f"{base}/_mock/")
    if tls:
        banner.add("TLS", tls)
    banner.add("Client", f"client_id {SANDBOX_CLIENT.client_id}  client_secret {SANDBOX_CLIENT.client_secret}")
    control = ""
    if config.beyond_loopback:
        banner.warnings.append(f"listening on {config.host or 'every address'}: other machines can reach this "
                               "emulator; its control plane (/_mock) now needs Authorization: Bearer <control token>")
        token = config.control_token if made_control_token else "$TRADEFENCE_CONTROL_TOKEN"
        shown = "made now; set TRADEFENCE_CONTROL_TOKEN to choose one" if made_control_token else "the configured one"
        banner.add("Control", f"Authorization: Bearer {token} ({shown})")
        control = f" -H {shlex.quote(f'Authorization: Bearer {config.control_token}')}" if made_control_token \
            else ' -H "Authorization: Bearer $TRADEFENCE_CONTROL_TOKEN"'
    body = f'{{"subject":"{config.default_subject}"}}'
    banner.add("Token", f"curl -s {base}/_mock/tokens{control} -H 'Content-Type: application/json' "
                        f"-d {shlex.quote(body)}")
    given = ([config.webhook_secret] if config.webhook_url else []) + [entry.secret for entry in config.webhooks]
    for entry, secret in zip(config.webhook_endpoints, given, strict=True):
        events = ", ".join(entry.events) if entry.events else "all events"
        shown = "the configured secret" if secret else f"secret {entry.secret} (made from the seed)"
        banner.add("Webhooks", f"{entry.url} ({events}), {shown}")
    if not config.webhook_endpoints:
        banner.add("Webhooks", "none yet: TRADEFENCE_WEBHOOK_URL=URL, or POST /_mock/webhooks (answers its secret)")
    if store is not None and store.restored is not None:
        found = store.restored.describe() if store.restored.epoch else "empty"
        banner.add("State", f"{store.path} ({found})")
    return banner
