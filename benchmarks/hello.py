"""A bare Flask app for the serving-stack comparison: what each server costs before the emulator does any work.

`benchmarks.hello:app` for the servers that import an app; `python -m benchmarks.hello` serves it on the
emulator's own server (`mock_server.serving`) on a free port and prints the URL first, like the emulator;
`--werkzeug` does the same on Werkzeug's threaded server, which the emulator used before.
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/hello")
def hello() -> dict[str, bool]:
    return {"ok": True}


if __name__ == "__main__":
    import sys

    if "--werkzeug" in sys.argv:
        from werkzeug.serving import make_server as werkzeug_server

        server = werkzeug_server("127.0.0.1", 0, app, threaded=True)
    else:
        from mock_server.serving import make_server

        server = make_server("127.0.0.1", 0, app)  # type: ignore[assignment]
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()
