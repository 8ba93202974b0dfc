"""A small client of the emulator's control plane (`/_mock`), for tests that need its powers — and for leaving
an emulator someone runs as the suite found it (its clock, its market mode, its accounts)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests


@dataclass(frozen=True)
class Setting:
    """What a test may change through the control plane, as it was: the clock (its reading, whether frozen, and
    when the reading was taken by the suite's own clock) and the market mode."""

    now: datetime
    frozen: bool
    taken: float
    market_mode: str


class ControlPlane:
    def __init__(self, base_url: str, *, verify: str | bool = True, token: str | None = None) -> None:
        self.base_url = base_url
        self._http = requests.Session()
        self._verify = verify  # per request: requests lets REQUESTS_CA_BUNDLE override a session's `verify`
        if token:  # an emulator listening beyond loopback (TRADEFENCE_CONTROL_TOKEN)
            self._http.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._http.request(method, f"{self.base_url}/_mock{path}", json=body, timeout=15,
                                      verify=self._verify)
        if response.status_code >= 300:
            raise AssertionError(f"control plane {method} /_mock{path} answered {response.status_code}: "
                                 f"{response.text[:300]}")
        return response.json()

    def setting(self, clock: Callable[[], float] = time.time) -> Setting:
        reading = self._call("GET", "/clock")
        taken = clock()
        mode = self._call("GET", "/state")["market_mode"]
        return Setting(_instant(reading["now"]), bool(reading["frozen"]), taken, mode)

    def restore(self, setting: Setting, clock: Callable[[], float] = time.time) -> None:
        """Back to `setting`: a frozen clock at its reading; a running one where it would be had nobody moved it
        (its reading then, plus the time that has passed since)."""
        if setting.frozen:
            self.freeze()
            self._call("POST", "/clock", {"action": "set", "to": _rfc3339(setting.now)})
        else:
            self.resume()
            moved = setting.now + timedelta(seconds=clock() - setting.taken)
            self._call("POST", "/clock", {"action": "set", "to": _rfc3339(moved)})
        self.market(setting.market_mode)

    def accounts(self) -> list[str]:
        return [account["id"] for account in self._call("GET", "/accounts")["data"]]

    def close_account(self, account_id: str) -> None:
        self._call("DELETE", f"/accounts/{account_id}")

    def reset(self, account_id: str | None = None) -> None:
        self._call("POST", "/reset", {"account_id": account_id} if account_id else {})

    def freeze(self) -> str:
        return self._call("POST", "/clock", {"action": "freeze"})["now"]

    def resume(self) -> None:
        self._call("POST", "/clock", {"action": "resume"})

    def advance(self, seconds: float) -> str:
        return self._call("POST", "/clock", {"action": "advance", "seconds": seconds})["now"]

    def market(self, mode: str) -> dict[str, Any]:
        return self._call("PUT", "/market", {"mode": mode})

    def rate_limit(self, capacity: int | None = None, refill_per_second: float | None = None) -> dict[str, Any]:
        """Read the limits, or set them (both values) and return the previous ones."""
        previous = self._call("GET", "/rate-limit")
        if capacity is not None and refill_per_second is not None:
            self._call("PUT", "/rate-limit", {"capacity": capacity, "refill_per_second": refill_per_second})
        return previous

    def mint(self, subject: str, scope: str = "trading:read trading:write", expires_in: int = 3600) -> str:
        return self._call("POST", "/tokens", {"subject": subject, "scope": scope,
                                              "expires_in": expires_in})["access_token"]

    def register_webhook(self, url: str) -> dict[str, Any]:
        return self._call("POST", "/webhooks", {"url": url})

    def remove_webhook(self, endpoint_id: str) -> None:
        response = self._http.delete(f"{self.base_url}/_mock/webhooks/{endpoint_id}", timeout=15, verify=self._verify)
        if response.status_code >= 300:
            raise AssertionError(f"control plane DELETE /_mock/webhooks answered {response.status_code}")

    def trigger(self, event_type: str) -> dict[str, Any]:
        return self._call("POST", "/events", {"type": event_type})

    def close(self) -> None:
        self._http.close()


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
