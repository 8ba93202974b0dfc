"""HTTPS and WSS (issue 20), the way users meet them: Python `requests` and `websocket-client` trusting the local
CA and resolving the production host names to the emulator, curl with `--resolve`, the guide's JavaScript with
NODE_EXTRA_CA_CERTS, the console script's flags; a client that does not trust the CA fails, never downgrades."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket
from flask import Flask

from mock_server.app import create_app
from mock_server.config import Config
from mock_server.serving import serve
from mock_server.serving.tls import LocalCA, ca_dir
from mock_server.spec.document import SpecDocument
from tests.support.receiver import eventually, receiver

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_HOSTS = ("api.tradefence.com", "stream.tradefence.com", "auth.tradefence.com",
                    "sandbox-api.tradefence.com")


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tls_url(app: Flask, ca: LocalCA) -> Iterator[str]:
    with serve(app, tls=ca.server_context()) as url:
        yield url


@pytest.fixture
def production_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resolver as a hosts-file line would make it: the Tradefence hosts are 127.0.0.1."""
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host in PRODUCTION_HOSTS else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def token(session: requests.Session, base: str) -> str:
    minted = session.post(f"{base}/_mock/tokens", json={"subject": "tls"}, timeout=10)
    assert minted.status_code == 201, minted.text
    return minted.json()["access_token"]


def test_the_api_answers_over_https_at_its_production_name(tls_url: str, ca: LocalCA,
                                                           production_names: None) -> None:
    base = f"https://api.tradefence.com:{port_of(tls_url)}"
    with requests.Session() as session:
        session.trust_env = False  # else REQUESTS_CA_BUNDLE, where set, wins over `verify`
        session.verify = str(ca.cert_path)
        session.headers["Authorization"] = f"Bearer {token(session, base)}"
        placed = session.post(f"{base}/v1/orders", json={"symbol": "AAPL", "type": "MARKET", "side": "BUY",
                                                         "quantity": 1}, timeout=10)
        assert placed.status_code == 201, placed.text
        read = session.get(f"{base}/v1/orders/{placed.json()['id']}", timeout=10)
        assert read.status_code == 200 and read.json()["status"] == "FILLED"
        assert session.get(f"{base}/_mock/", timeout=10).status_code == 200  # the dashboard


def test_oauth_over_https_keeps_its_issuer_and_redirect_rules(tls_url: str, ca: LocalCA,
                                                              production_names: None) -> None:
    base = f"https://auth.tradefence.com:{port_of(tls_url)}"
    redirect = "http://127.0.0.1:5000/callback"
    with requests.Session() as session:
        session.trust_env = False  # else REQUESTS_CA_BUNDLE, where set, wins over `verify`
        session.verify = str(ca.cert_path)
        approved = session.get(f"{base}/authorize", params={
            "response_type": "code", "client_id": "sandbox-client", "redirect_uri": redirect, "state": "s1",
            "scope": "trading:read"}, allow_redirects=False, timeout=10)
        assert approved.status_code == 302 and approved.headers["Location"].startswith(redirect + "?code=")
        code = approved.headers["Location"].split("code=")[1].split("&")[0]
        issued = session.post(f"{base}/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "client_id": "sandbox-client", "client_secret": "sandbox-secret"}, timeout=10)
        assert issued.status_code == 200, issued.text
        claims = json.loads(_b64(issued.json()["access_token"].split(".")[1]))
        assert claims["iss"] == "https://auth.tradefence.com"
        refused = session.get(f"{base}/authorize", params={
            "response_type": "code", "client_id": "sandbox-client", "redirect_uri": "https://evil.example/cb",
            "state": "s2"}, allow_redirects=False, timeout=10)
        assert refused.status_code == 400


def _b64(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_the_stream_answers_over_wss_at_its_production_name(tls_url: str, ca: LocalCA,
                                                            production_names: None) -> None:
    ws = websocket.create_connection(f"wss://stream.tradefence.com:{port_of(tls_url)}/market-data", timeout=10,
                                     sslopt={"ca_certs": str(ca.cert_path)})
    try:
        ws.send(json.dumps({"action": "subscribe", "symbols": ["AAPL"]}))
        first = json.loads(ws.recv())
        assert first["type"] == "subscription" and first["symbols"] == ["AAPL"]
        assert json.loads(ws.recv())["type"] in ("quote", "trade", "heartbeat")
    finally:
        ws.close()


def test_a_client_that_does_not_trust_the_ca_fails_and_never_downgrades(tls_url: str) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls_url}/_mock/clock", timeout=10)
    with pytest.raises(ssl.SSLError):
        websocket.create_connection(tls_url.replace("https://", "wss://") + "/market-data", timeout=10)


def test_plain_http_to_the_tls_port_gets_a_clear_400(tls_url: str) -> None:
    plain = requests.get(tls_url.replace("https://", "http://") + "/v1/account", timeout=10)
    assert plain.status_code == 400 and "plain HTTP request was sent to HTTPS port" in plain.text


def test_curl_with_resolve_and_the_ca(tls_url: str, ca: LocalCA) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    port = port_of(tls_url)
    done = subprocess.run([curl, "-sS", "--resolve", f"api.tradefence.com:{port}:127.0.0.1", "--cacert",
                           str(ca.cert_path), f"https://api.tradefence.com:{port}/v1/account"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["error"]["code"] == 1001  # reached the API, which wants a token
    untrusted = subprocess.run([curl, "-sS", tls_url + "/v1/account"], capture_output=True, text=True,
                               timeout=30)
    assert untrusted.returncode == 60  # "Peer certificate cannot be authenticated with known CA certificates"


def test_the_guides_javascript_over_https_and_wss(tls_url: str, ca: LocalCA) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript example needs Node.js >= 20")
    if not (ROOT / "node_modules" / "ws" / "package.json").exists():
        pytest.skip("Node's `ws` package is missing: run `npm ci` (`make test` does)")
    base = tls_url.replace("127.0.0.1", "localhost")
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(ca.cert_path)}
    done = subprocess.run([node, str(ROOT / "examples" / "docs_snippets.js"), base], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "subscription" in done.stdout and "FILLED" in done.stdout
    untrusted = subprocess.run([node, str(ROOT / "examples" / "docs_snippets.js"), base], cwd=ROOT,
                               env={k: v for k, v in os.environ.items() if k != "NODE_EXTRA_CA_CERTS"},
                               capture_output=True, text=True, timeout=60)
    assert untrusted.returncode != 0


def test_webhooks_reach_an_https_receiver_that_the_named_ca_vouches_for(ca: LocalCA,
                                                                        tradefence_spec_document: SpecDocument) -> None:
    with receiver(tls=ca.server_context()) as hooks:
        for ca_file, outcome in ((str(ca.cert_path), "succeeded"), ("", "failed")):
            config = Config(seed=7, webhook_url=f"{hooks.url}/hook", webhook_ca_file=ca_file,
                            webhook_retry_schedule=(), webhook_timeout=5.0, webhook_drain_seconds=1.0)
            app = create_app(config, document=tradefence_spec_document)
            try:
                with serve(app) as url:
                    event = requests.post(f"{url}/_mock/events", json={"type": "order.filled"}, timeout=10)
                    assert event.status_code == 202, event.text
                    event_id = event.json()["id"]

                    def settled(event_id: str = event_id, url: str = url) -> dict[str, Any] | None:
                        found = requests.get(f"{url}/_mock/webhooks/deliveries/{event_id}", timeout=10).json()
                        return found if found["status"] in ("succeeded", "failed") else None

                    record = eventually(settled)
                    assert record["status"] == outcome, record
            finally:
                app.extensions["tradefence"].close()
        assert len(hooks.received) == 1  # the untrusted attempt never got past the handshake


def test_the_ca_is_made_once_and_its_key_kept_private(tmp_path: Path) -> None:
    first = LocalCA(tmp_path / "ca")
    again = LocalCA(tmp_path / "ca")
    assert first.created and not again.created and first.cert_path.read_bytes() == again.cert_path.read_bytes()
    assert stat.S_IMODE((tmp_path / "ca" / "ca-key.pem").stat().st_mode) == 0o600
    assert ca_dir({"TRADEFENCE_CA_DIR": str(tmp_path / "x")}) == tmp_path / "x"


def test_the_console_script_prints_the_ca_path_and_serves_tls(tmp_path: Path) -> None:
    env = {**os.environ, "TRADEFENCE_CA_DIR": str(tmp_path / "ca")}
    printed = subprocess.run([sys.executable, "-m", "mock_server", "--tls-ca-path"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert printed.returncode == 0 and printed.stdout.strip() == str(tmp_path / "ca" / "ca.pem")
    assert Path(printed.stdout.strip()).exists()
    from tests.support.console import console_script

    with console_script("--tls", env=env) as (process, url):
        assert url.startswith("https://")
        answer = requests.get(f"{url}/_mock/clock", verify=str(tmp_path / "ca" / "ca.pem"), timeout=10)
        assert answer.status_code == 200
        assert process.stdout is not None
        banner = list(iter(process.stdout.readline, "Ctrl-C stops it.\n"))
        trust = next(line for line in banner if line.split()[:1] == ["TLS"])
        assert "NODE_EXTRA_CA_CERTS=" in trust and f"REQUESTS_CA_BUNDLE={tmp_path / 'ca' / 'ca.pem'}" in trust
        assert any(line.split()[:2] == ["Stream", url.replace("https", "wss") + "/market-data"] for line in banner)


def test_the_dashboard_over_https_streams_over_wss(tls_url: str, tmp_path: Path) -> None:
    """The page opens its stream with the scheme it was loaded with (`wss:` under `https:`), which its CSP's
    `connect-src 'self'` allows. Chromium is told to accept the certificate: what is tested here is the page."""
    from tests.test_dashboard import CHROMIUM, CHROMIUM_FLAGS

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: the dashboard's browser test needs Debian's chromium")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            ignore_https_errors=True)
        try:
            page = context.new_page()
            problems: list[str] = []
            page.on("console", lambda message: message.type == "error" and problems.append(message.text))
            page.goto(f"{tls_url}/_mock/?symbols=AAPL")
            playwright_api.expect(page.locator("#stream-status")).to_have_text("stream: live", timeout=15_000)
            playwright_api.expect(page.locator("#quotes tbody")).to_contain_text("AAPL", timeout=15_000)
            assert problems == []
        finally:
            context.close()
