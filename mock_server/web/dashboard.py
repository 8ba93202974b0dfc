"""The dashboard (`GET /_mock/`): one HTML page a developer keeps open beside a running client.

The page is self-contained so there is no build step and no static route outside the spec: `dashboard/index.html`
with `dashboard.css` and `dashboard.js` inlined into it once per app. Its data comes from the control plane's JSON
endpoints (polled by the page) and the market-data socket, never from here. The Content-Security-Policy allows
exactly the inlined script and style (by hash) and same-origin connections, because the page shows what clients
sent (journal paths) and must never run it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from importlib import resources

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue

from mock_server.web.routing import Api, Call

ASSETS = ("web", "dashboard")


@dataclass(frozen=True, slots=True)
class Page:
    html: str
    policy: str


def load_page() -> Page:
    folder = resources.files("mock_server").joinpath(*ASSETS)
    script = folder.joinpath("dashboard.js").read_text(encoding="utf-8")
    style = folder.joinpath("dashboard.css").read_text(encoding="utf-8")
    html = folder.joinpath("index.html").read_text(encoding="utf-8")
    html = html.replace("/*STYLE*/", style, 1).replace("/*SCRIPT*/", script, 1)
    policy = "; ".join((
        "default-src 'none'", f"script-src {_hash(script)}", f"style-src {_hash(style)}",
        "connect-src 'self'", "img-src data:", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    ))
    return Page(html, policy)


def blueprint(api: Api) -> Blueprint:
    bp = Blueprint("dashboard", __name__)
    page = load_page()  # per app, like everything else: no module-level cache

    @api.route(bp, "mockDashboard")
    def dashboard(call: Call) -> ResponseReturnValue:
        response = Response(page.html, mimetype="text/html")
        response.headers["Content-Security-Policy"] = page.policy
        response.headers["Cache-Control"] = "no-store"  # a reseed or an upgrade shows at once
        return response

    return bp


def _hash(text: str) -> str:
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"
