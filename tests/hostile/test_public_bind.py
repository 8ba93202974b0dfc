"""A public bind is a decision: beyond loopback the start warns, and the control plane (`/_mock`) wants
`Authorization: Bearer <TRADEFENCE_CONTROL_TOKEN>` (made and printed at start when unset); the dashboard asks for it
once per tab. On loopback everything stays open.

The emulator's tests bind loopback; the app is told it listens beyond it through its config (`host`), which is how
the CLI tells it too. Only the CLI test binds a real non-loopback address, and only when the machine has one.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests
from flask import Flask

from mock_server.app import create_app
from mock_server.banner import start_banner
from mock_server.cli import with_control_token
from mock_server.config import Config, ConfigError, load_config
from mock_server.spec.document import SpecDocument
from tests.conftest import mint
from tests.support.console import Lines
from tests.support.live import serve, spec_session
from tests.test_dashboard import browser_page  # noqa: F401  # the fixture, for the dashboard's prompt

TOKEN = "c0ntrol-T0ken_for.tests~"


@pytest.mark.parametrize(("host", "beyond"), [
    ("127.0.0.1", False), ("127.8.9.10", False), ("::1", False), ("localhost", False), ("LocalHost", False),
    ("0.0.0.0", True), ("::", True), ("", True), ("192.0.2.7", True), ("2001:db8::1", True), ("box.lan", True),
])
def test_what_counts_as_beyond_loopback(host: str, beyond: bool) -> None:
    assert Config(host=host, control_token=TOKEN).beyond_loopback is beyond


def test_beyond_loopback_without_a_token_is_refused_by_the_app_factory() -> None:
    with pytest.raises(ConfigError, match="control_token"):
        create_app(Config(host="0.0.0.0"))


def test_the_token_comes_from_the_environment_and_must_be_a_bearer_token() -> None:
    assert load_config(None, {"TRADEFENCE_CONTROL_TOKEN": TOKEN}).control_token == TOKEN
    with pytest.raises(ConfigError, match="TRADEFENCE_CONTROL_TOKEN is not valid") as refused:
        load_config(None, {"TRADEFENCE_CONTROL_TOKEN": "two words"})
    assert "two words" not in str(refused.value)  # a secret stays out of the message


def test_the_cli_makes_a_token_only_when_needed_and_the_banner_shows_only_one_it_made() -> None:
    assert with_control_token(Config()) == (Config(), False)
    assert with_control_token(Config(host="0.0.0.0", control_token=TOKEN))[1] is False
    made, was_made = with_control_token(Config(host="0.0.0.0"))
    assert was_made and len(made.control_token) >= 32
    assert made.control_token != with_control_token(Config(host="0.0.0.0"))[0].control_token  # not from the seed

    printed = start_banner(made, 8080, made_control_token=True).render()
    assert printed.startswith("WARNING: listening on 0.0.0.0")
    assert f"Bearer {made.control_token}" in printed
    configured = start_banner(Config(host="0.0.0.0", control_token=TOKEN), 8080).render()
    assert TOKEN not in configured and "$TRADEFENCE_CONTROL_TOKEN" in configured
    assert "WARNING" not in start_banner(Config(), 8080).render()


@pytest.fixture
def exposed(tradefence_spec_document: SpecDocument) -> Iterator[tuple[str, Flask]]:
    """An emulator configured as bound beyond loopback (served, as every test server is, on loopback)."""
    app = create_app(Config(host="0.0.0.0", control_token=TOKEN, seed=7, validate_responses=True),
                     document=tradefence_spec_document)
    try:
        with serve(app) as url:
            yield url, app
    finally:
        app.extensions["tradefence"].close()


def _concrete(path: str) -> str:
    return path.replace("{accountId}", "acc_nobody").replace("{faultId}", "flt_01JD6QD2F5H8K1M4P7R0T3W6YZ") \
        .replace("{endpointId}", "we_01JD6QC4M8T2R6Y9B3N5P7W0XE").replace("{eventId}", "evt_01JD6QA0Q2C8H5N9R4T7W1Y3ZB")


def test_every_control_operation_wants_the_token_beyond_loopback(exposed: tuple[str, Flask]) -> None:
    url, app = exposed
    document: SpecDocument = app.extensions["tradefence.spec"]
    control = [op for op in document.operations if op.control]
    assert len(control) > 20  # every /_mock operation but the dashboard page
    with spec_session(url, app) as http:
        for operation in control:
            path = _concrete(operation.url_path)
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                            {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer t\u00f6ken"}):
                refused = http.request(operation.method, path, headers=headers)
                assert refused.status_code == 401, (operation.operation_id, headers, refused.text)
                assert refused.json()["error"]["code"] == 1001
                assert refused.headers["WWW-Authenticate"] == 'Bearer realm="tradefence-control"'
            let_in = http.request(operation.method, path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert let_in.status_code != 401, (operation.operation_id, let_in.text)


def test_with_the_token_the_control_plane_works_and_the_api_and_dashboard_page_are_as_before(
        exposed: tuple[str, Flask]) -> None:
    url, app = exposed
    with spec_session(url, app) as http:
        assert http.get("/_mock/").status_code == 200  # the page: no data in it, a browser cannot add a header
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        access = mint(http, subject="remote")
        account = http.get("/v1/account", headers={"Authorization": f"Bearer {access}"})
        assert account.status_code == 200 and account.json()["id"] == "acc_remote"
        journal = http.get("/_mock/journal", params={"path": "^/_mock/tokens$"}).json()["data"]
        assert journal[0]["headers"]["Authorization"] == "Bearer ***"  # the control token is masked too


def test_on_loopback_the_control_plane_stays_open_even_with_a_token_configured(
        tradefence_spec_document: SpecDocument) -> None:
    app = create_app(Config(control_token=TOKEN), document=tradefence_spec_document)
    try:
        with serve(app) as url, spec_session(url, app) as http:
            assert http.get("/_mock/state").status_code == 200
    finally:
        app.extensions["tradefence"].close()


def _non_loopback_address() -> str | None:
    """An IPv4 address of this machine other than loopback: the one it would send from (a UDP "connect" sends
    nothing), if it can be bound."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("198.51.100.1", 9))  # TEST-NET-2: any route will do, no packet leaves
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    if address.startswith("127.") or address == "0.0.0.0":
        return None
    with socket.socket() as trial:
        try:
            trial.bind((address, 0))
        except OSError:
            return None
    return address


def test_the_console_script_on_a_real_non_loopback_address_warns_makes_a_token_and_wants_it() -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address; the config-level tests above cover the logic")
    process = subprocess.Popen([sys.executable, "-m", "mock_server", "--host", address, "--port", "0", "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = Lines(process.stdout)
        assert lines.wait_for(r"^WARNING: listening on (\S+): other machines").group(1) == address
        base = lines.wait_for(r"^Tradefence Sandbox on (http://\S+) ").group(1)
        token = lines.wait_for(r"^  Control +Authorization: Bearer (\S+) \(made now").group(1)
        assert requests.get(f"{base}/_mock/state", timeout=10).status_code == 401
        assert requests.get(f"{base}/_mock/state", headers={"Authorization": f"Bearer {token}"},
                            timeout=10).status_code == 200
    finally:
        process.kill()
        process.wait()


def test_the_dashboard_asks_for_the_token_once_and_keeps_it_for_the_tab(
        exposed: tuple[str, Flask], browser_page) -> None:  # noqa: F811
    from playwright.sync_api import expect

    url, app = exposed
    with spec_session(url, app) as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        mint(http, subject="watched")
    asked = []

    def answer(dialog) -> None:
        asked.append(dialog.message)
        dialog.accept(TOKEN)

    page = browser_page
    page.on("dialog", answer)
    page.goto(f"{url}/_mock/")
    expect(page.locator("#accounts tbody")).to_contain_text("acc_watched", timeout=15_000)
    first = page.locator("#status").text_content()
    expect(page.locator("#status")).not_to_have_text(first or "", timeout=15_000)  # another poll went by
    page.reload()  # the same tab: the token is kept
    expect(page.locator("#accounts tbody")).to_contain_text("acc_watched", timeout=15_000)
    assert len(asked) == 1 and "control token" in asked[0], asked
    assert not [problem for problem in page.problems if "401" not in problem], page.problems


def test_beyond_loopback_a_token_signed_with_the_seeds_key_is_refused() -> None:
    """The default seed is public knowledge; beyond loopback the derived signing key also takes the control token,
    so a token re-signed with the seed-derived key (what anyone could compute) is not accepted."""
    import jwt

    seed_key = Config().token_key  # what the seed alone gives: the key on loopback
    public = Config(host="0.0.0.0", control_token=TOKEN)
    assert public.token_key != seed_key
    assert Config(host="0.0.0.0", control_token=TOKEN).token_key == public.token_key  # a restart keeps it
    assert Config(host="0.0.0.0", control_token=TOKEN, signing_key="chosen").token_key == "chosen"
    app = create_app(public)
    try:
        with serve(app) as url:
            minted = requests.post(f"{url}/_mock/tokens", json={"subject": "alice"}, timeout=10,
                                   headers={"Authorization": f"Bearer {TOKEN}"})
            assert minted.status_code == 201, minted.text
            genuine = minted.json()["access_token"]
            accepted = requests.get(f"{url}/v1/account", headers={"Authorization": f"Bearer {genuine}"}, timeout=10)
            assert accepted.status_code == 200
            claims = jwt.decode(genuine, options={"verify_signature": False})
            forged = jwt.encode(claims, seed_key, algorithm="HS256", headers={"typ": "at+jwt"})
            refused = requests.get(f"{url}/v1/account", headers={"Authorization": f"Bearer {forged}"}, timeout=10)
            assert refused.status_code == 401
    finally:
        app.extensions["tradefence"].close()
