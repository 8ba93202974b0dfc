"""The emulator's one outbound HTTP client: webhook deliveries, with `requests`.

Kept out of the domain (which stays free of I/O libraries) and handed to the dispatcher by the composition root.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from mock_server.domain.webhooks.dispatcher import SendResult


class RequestsTransport:
    """POSTs one attempt. Redirects are not followed (a 3xx is a failed attempt, as Standard Webhooks says);
    ``timeout`` bounds connecting and each wait for data. Latency is real elapsed time, whatever the emulator
    clock says, because it measures the receiver. An https:// receiver's certificate is checked against `ca_file`
    when given (the user's own CA), else against what requests trusts (REQUESTS_CA_BUNDLE, or certifi's bundle)."""

    def __init__(self, ca_file: str | None = None) -> None:
        self._verify: str | bool = ca_file or True

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> SendResult:
        import requests  # on the first delivery, not at start-up: a cold start that may never deliver skips it

        started = time.perf_counter()
        try:
            with requests.post(url, data=body, headers=dict(headers), timeout=timeout, allow_redirects=False,
                               stream=True, verify=self._verify) as response:
                status = response.status_code
        except requests.Timeout:
            return SendResult(None, _since(started), f"timed out after {timeout:g} s")
        except requests.RequestException as exc:
            return SendResult(None, _since(started), f"{type(exc).__name__}: {exc}")
        error = None if 200 <= status < 300 else f"HTTP {status}"
        return SendResult(status, _since(started), error)


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
