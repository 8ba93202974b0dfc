"""What `--target` names: where the API, auth server, stream and (on emulators only) control plane live."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import requests

from contracts.control import ControlPlane

SANDBOX_DEFAULTS = {
    "TRADEFENCE_API_URL": "https://sandbox-api.tradefence.com/v1",
    "TRADEFENCE_AUTH_URL": "https://auth.tradefence.com",
    "TRADEFENCE_STREAM_URL": "wss://stream.tradefence.com/market-data",
}


@dataclass(frozen=True)
class Target:
    name: str
    api_url: str
    auth_url: str
    stream_url: str
    control_url: str | None  # only emulators have a control plane
    verify: str | bool = True  # the CA bundle that signs an https:// target (requests' `verify`)
    control_token: str | None = None  # an emulator listening beyond loopback wants it on /_mock

    @property
    def is_emulator(self) -> bool:
        return self.control_url is not None

    def control_plane(self) -> ControlPlane | None:
        if not self.control_url:
            return None
        return ControlPlane(self.control_url, verify=self.verify, token=self.control_token)

    @classmethod
    def from_base(cls, name: str, base: str, *, verify: str | bool = True, control_token: str | None = None) -> Target:
        """A server laid out like the emulator: /authorize, /token, /v1, /market-data and maybe /_mock."""
        base = base.rstrip("/")
        control = base if _has_control_plane(base, verify, control_token) else None
        stream = "ws" + base.removeprefix("http") + "/market-data"
        return cls(name, f"{base}/v1", base, stream, control, verify, control_token)

    @classmethod
    def sandbox(cls, environ: Mapping[str, str], *, verify: str | bool = True) -> Target:
        values = {key: environ.get(key) or default for key, default in SANDBOX_DEFAULTS.items()}
        return cls("sandbox", values["TRADEFENCE_API_URL"].rstrip("/"), values["TRADEFENCE_AUTH_URL"].rstrip("/"),
                   values["TRADEFENCE_STREAM_URL"], None, verify)


def _has_control_plane(base: str, verify: str | bool, token: str | None) -> bool:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return requests.get(f"{base}/_mock/clock", timeout=5, verify=verify, headers=headers).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def in_process_emulator(seed: int) -> Iterator[str]:
    """`--target=mock`: the emulator in this process on a free loopback port, stopped at the end."""
    from mock_server.app import create_app
    from mock_server.config import Config
    from mock_server.serving import serve

    # Generous limits: the suite itself is not what the rate limiter is for; the 2001 test narrows them.
    app = create_app(Config(seed=seed, rate_limit_capacity=100_000, rate_limit_per_second=100_000.0))
    try:
        with serve(app) as url:
            yield url
    finally:
        app.extensions["tradefence"].close()
