"""Instructions per request, in-process, for comparing two versions of the code on a busy machine.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m benchmarks.instructions get 100
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m benchmarks.instructions get 400

The app is called through WSGI with the clock frozen (under valgrind a run lasts minutes; a running clock would
add simulator steps to it). With `PYTHONHASHSEED=0`, the difference of the two runs' "Collected" totals divided
by 300 is the cost of one request, start-up and set-up cancelled out (docs/performance.md, "Method").
"""

from __future__ import annotations

import io
import json
import logging
import sys
from typing import Any

from mock_server.app import create_app
from mock_server.config import Config

ORDER = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}


def main(operation: str, count: int) -> None:
    logging.disable(logging.INFO)  # the per-request log line, as `make bench` runs the emulator with --quiet
    app = create_app(Config(seed=7, rate_limit_capacity=10**9, rate_limit_per_second=1e9))

    def call(method: str, path: str, body: Any = None, token: str | None = None) -> bytes:
        raw = json.dumps(body).encode() if body is not None else b""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(raw), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.version": (1, 0),
            "HTTP_HOST": "127.0.0.1:8080", "HTTP_USER_AGENT": "wrk"}  # what wrk sends
        if body is not None:
            environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(raw)))
        if token:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        statuses: list[str] = []

        def start_response(status: str, _headers: list[tuple[str, str]], _exc_info: Any = None) -> Any:
            statuses.append(status)
            return lambda _data: None

        result = app(environ, start_response)
        try:
            data = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        assert statuses[0][0] == "2", (statuses, data)
        return data

    call("POST", "/_mock/clock", {"action": "freeze"})
    token = json.loads(call("POST", "/_mock/tokens", {"subject": "bench"}))["access_token"]
    order_id = json.loads(call("POST", "/v1/orders", ORDER, token))["id"]
    for _ in range(count):
        if operation == "get":
            call("GET", f"/v1/orders/{order_id}", token=token)
        else:
            call("POST", "/v1/orders", ORDER, token)
    app.extensions["tradefence"].close(0)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
