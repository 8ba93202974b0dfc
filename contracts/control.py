"""A small client of the emulator's control plane (`/_mock`), for tests that need its powers."""

from __future__ import annotations

from typing import Any

import requests


class ControlPlane:
    def __init__(self, base_url: str, *, verify: str | bool = True) -> None:
        self.base_url = base_url
        self._http = requests.Session()
        self._http.verify = verify

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._http.request(method, f"{self.base_url}/_mock{path}", json=body, timeout=15)
        if response.status_code >= 300:
            raise AssertionError(f"control plane {method} /_mock{path} answered {response.status_code}: "
                                 f"{response.text[:300]}")
        return response.json()

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
        response = self._http.delete(f"{self.base_url}/_mock/webhooks/{endpoint_id}", timeout=15)
        if response.status_code >= 300:
            raise AssertionError(f"control plane DELETE /_mock/webhooks answered {response.status_code}")

    def trigger(self, event_type: str) -> dict[str, Any]:
        return self._call("POST", "/events", {"type": event_type})

    def close(self) -> None:
        self._http.close()
