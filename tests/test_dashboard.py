"""The dashboard (`GET /_mock/`): the control-plane reads it polls, and the page itself in headless Chromium.

The browser test needs Debian's chromium (`apt-get install chromium`) and the `playwright` package (the
`dashboard-tests` extra, part of `dev`); it skips, saying which is missing, without them. Playwright only drives
/usr/bin/chromium: it never downloads a browser of its own. It leaves a screenshot of the page at 1400 px in
`.artifacts/dashboard.png` for a person to look at.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket
from flask import Flask

from tests.conftest import mint
from tests.support.live import CheckedSession, spec_session
from tests.support.receiver import eventually

CHROMIUM = Path(os.environ.get("TRADEFENCE_CHROMIUM", "/usr/bin/chromium"))
# As root on a closed network: no sandbox (needs user namespaces), no GPU, no calls home.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
POLL = {"X-Tradefence-Dashboard": "poll"}
SCREENSHOT = Path(__file__).resolve().parent.parent / ".artifacts" / "dashboard.png"


def place(trader: CheckedSession, **order: Any) -> dict[str, Any]:
    body = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 10, **order}
    response = trader.post("/v1/orders", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def journal_paths(http: CheckedSession, pattern: str) -> list[str]:
    response = http.get("/_mock/journal", params={"path": pattern})
    assert response.status_code == 200, response.text
    return [entry["path"] for entry in response.json()["data"]]


# -- what the page reads ------------------------------------------------------------------------------------------

def test_the_page_is_one_self_contained_html_document(http: CheckedSession, base_url: str) -> None:
    page = http.get("/_mock/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "<title>Tradefence Sandbox</title>" in page.text and "/market-data" in page.text
    assert "/*SCRIPT*/" not in page.text and "/*STYLE*/" not in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in policy and "connect-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["Cache-Control"] == "no-store"

    bare = requests.get(f"{base_url}/_mock", allow_redirects=False, timeout=10)  # no operation: plain requests
    assert bare.status_code == 308 and bare.headers["Location"].endswith("/_mock/")


def test_any_accounts_orders_and_positions_without_its_token(http: CheckedSession, trader: CheckedSession) -> None:
    filled = place(trader)
    resting = place(trader, symbol="MSFT", type="LIMIT", quantity=5, price=1.00)

    orders = http.get("/_mock/accounts/acc_trader/orders")
    assert orders.status_code == 200, orders.text
    assert [order["id"] for order in orders.json()["data"]] == [resting["id"], filled["id"]]  # newest first
    open_only = http.get("/_mock/accounts/acc_trader/orders", params={"status": "open", "limit": 1}).json()
    assert [order["id"] for order in open_only["data"]] == [resting["id"]] and open_only["has_more"] is False
    assert trader.get("/v1/orders").json()["data"] == orders.json()["data"]  # the same view as the owner's

    positions = http.get("/_mock/accounts/acc_trader/positions")
    assert positions.status_code == 200, positions.text
    assert [(p["symbol"], p["quantity"]) for p in positions.json()["data"]] == [("AAPL", 10)]


def test_reading_an_unknown_account_is_404_and_opens_nothing(http: CheckedSession) -> None:
    for path in ("/_mock/accounts/acc_nobody/orders", "/_mock/accounts/acc_nobody/positions"):
        missing = http.get(path)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == 4004, missing.text
    assert http.get("/_mock/accounts/nobody/orders").status_code == 400  # not an account id
    assert "acc_nobody" not in [account["id"] for account in http.get("/_mock/accounts").json()["data"]]


def test_watching_does_not_fill_the_journal(http: CheckedSession) -> None:
    http.get("/_mock/")
    http.get("/_mock/state", headers=POLL)
    http.get("/_mock/accounts", headers=POLL)
    assert journal_paths(http, "^/_mock/") == []

    ws_base = "ws" + http.base_url.removeprefix("http")
    websocket.create_connection(f"{ws_base}/market-data?watch=dashboard", timeout=5).close()  # the page's socket
    assert journal_paths(http, "^/market-data") == []
    websocket.create_connection(f"{ws_base}/market-data", timeout=5).close()  # a client's socket is journaled
    assert eventually(lambda: journal_paths(http, "^/market-data") == ["/market-data"])

    http.get("/_mock/state")  # anyone else's reads are journaled as before
    http.post("/_mock/clock", json={"action": "freeze"}, headers=POLL)  # the marker only spares GETs
    assert journal_paths(http, "^/_mock/") == ["/_mock/clock", "/_mock/state"]


# -- the page in a browser ----------------------------------------------------------------------------------------

@pytest.fixture
def browser_page(tmp_path: Path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: the dashboard's browser test needs Debian's chromium "
                    "(apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("the `playwright` package is missing: pip install -e '.[dashboard-tests]' (`.[dev]` has it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # A persistent context is how Playwright takes a fresh --user-data-dir of our own.
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = context.new_page()
            page.problems = []  # console errors (a CSP refusal shows here) and uncaught exceptions
            page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
            page.on("pageerror", lambda error: page.problems.append(str(error)))
            yield page
        finally:
            context.close()


def test_the_dashboard_shows_accounts_orders_and_live_ticks(http: CheckedSession, trader: CheckedSession, base_url: str,
                                                          app: Flask, browser_page) -> None:
    from playwright.sync_api import expect

    # A frozen clock: the stream sends the current step's quote on subscribe and no other, so the page must show
    # exactly the quote the API gives now. An account with a long id, like the contract suite's, must not push
    # the positions' numbers out of view.
    assert http.post("/_mock/clock", json={"action": "freeze"}).status_code == 200
    order = place(trader)
    long_subject = "contract-suite-0123456789abcdef"
    with spec_session(base_url, app) as suite:
        suite.headers["Authorization"] = f"Bearer {mint(http, long_subject)}"
        place(suite, symbol="MSFT", quantity=3)
    quote = trader.get("/v1/market/quotes/AAPL").json()

    page = browser_page
    page.goto(f"{base_url}/_mock/?symbols=AAPL,MSFT")
    expect(page.locator("#accounts tbody")).to_contain_text("acc_trader", timeout=15_000)
    expect(page.locator("#orders tbody")).to_contain_text(order["id"])
    expect(page.locator("#orders tbody")).to_contain_text("FILLED")
    expect(page.locator("#positions tbody")).to_contain_text("AAPL")
    aapl = page.locator("#quotes tbody tr", has_text="AAPL")
    expect(aapl).to_contain_text(f"{quote['bid']:,.2f}", timeout=15_000)
    expect(aapl).to_contain_text(f"{quote['ask']:,.2f}")
    expect(page.locator("#stream-status")).to_have_text("stream: live")
    expect(page.locator("#journal tbody")).to_contain_text("/v1/orders")  # the trader's request, not the polls
    expect(page.locator("#status")).to_have_text(re.compile(r"^updated \d\d:\d\d:\d\d UTC$"))  # like the clock

    # Every panel fits at 1400 px: nothing scrolls sideways, no column is cut.
    overflowing = page.evaluate("[...document.querySelectorAll('section')]"
                                ".filter((s) => s.scrollWidth > s.clientWidth).map((s) => s.id)")
    assert overflowing == []

    # The price chart: each step the clock moves publishes a quote, and a fill in its window is marked.
    for _ in range(6):
        http.post("/_mock/clock", json={"action": "advance", "seconds": 1})
    place(trader, side="SELL", quantity=4)
    chart = page.locator('#quotes svg[data-symbol="AAPL"]')
    expect(chart.locator("polygon.fill.sell")).to_have_count(1, timeout=15_000)
    expect(chart.locator("polygon.fill.buy")).to_have_count(1)
    assert len(chart.locator("polyline").get_attribute("points").split()) >= 6

    # A request opens with its headers and body, secrets masked as the journal masks them.
    page.locator("#journal tbody tr", has_text="/v1/orders").first.click()
    expect(page.locator("#request")).to_be_visible()
    expect(page.locator("#request-title")).to_have_text("POST /v1/orders")
    expect(page.locator("#request-headers")).to_contain_text("Authorization: Bearer ***")
    expect(page.locator("#request-body")).to_contain_text('"side": "SELL"')

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)  # for a person to look at (see the module docstring)
    assert page.problems == []

    # The page's polls and its own market-data socket left no trace.
    assert journal_paths(http, "^/_mock/(state|accounts)|^/market-data") == []
