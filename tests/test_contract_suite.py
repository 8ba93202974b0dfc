"""The contract suite run the way users meet it: against the sandbox face (no control plane, the default rate
limit), with a CI job's credentials (a refresh token, the client id and secret) in its environment, on an account
that already holds a portfolio and a resting order of its owner's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.console import console_script
from tests.support.contract_run import ROOT, Login, contracts_command, login, run_contracts
from tests.support.face import Face, sandbox_face
from tests.support.receiver import eventually

PORTFOLIO = {"AAPL": 100, "MSFT": 40, "KO": 150, "NVDA": 25}
POSITION_FIELDS = ("symbol", "quantity", "available_quantity", "average_entry_price", "cost_basis", "opened_at")


def api(face: Face, user: Login) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {user.access_token}"
    return session


def seed_portfolio(face: Face, user: Login) -> dict[str, Any]:
    """The owner's own trades, made through the API before the run: four positions and a resting limit buy."""
    with api(face, user) as owner:
        for symbol, quantity in PORTFOLIO.items():
            placed = owner.post(f"{face.url}/v1/orders", json={"symbol": symbol, "type": "MARKET", "side": "BUY",
                                                              "quantity": quantity, "client_order_id": "mine"})
            assert placed.status_code == 201 and placed.json()["status"] == "FILLED", placed.text
        resting = owner.post(f"{face.url}/v1/orders", json={"symbol": "JPM", "type": "LIMIT", "side": "BUY",
                                                            "quantity": 10, "price": 1.5, "client_order_id": "mine"})
        assert resting.status_code == 201 and resting.json()["status"] == "OPEN", resting.text
        return resting.json()


def portfolio(face: Face, user: Login) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The owner's positions (what does not move with the market) and open orders."""
    with api(face, user) as owner:
        positions = owner.get(f"{face.url}/v1/positions").json()["data"]
        orders = owner.get(f"{face.url}/v1/orders", params={"status": "open", "limit": 500}).json()["data"]
    return [{field: p[field] for field in POSITION_FIELDS} for p in positions], orders


@pytest.fixture(scope="module")
def open_face() -> Iterator[Face]:
    with sandbox_face() as face:
        yield face


def test_the_suite_passes_behind_the_face_and_leaves_the_owner_s_portfolio_exactly_as_it_was(
        open_face: Face, tmp_path: Path) -> None:
    user = login(open_face.url)
    resting = seed_portfolio(open_face, user)
    before = portfolio(open_face, user)
    result = run_contracts(open_face.url, "--contract-examples=3", "--contract-token-file", str(tmp_path / "token"),
                           env=user.environment())
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "polite client:" in result.stdout and "orders placed:" in result.stdout
    assert "LEFT BEHIND" not in result.stdout
    after = portfolio(open_face, user)
    assert after == before
    assert after[1] == [resting]


def test_the_suite_passes_behind_the_face_with_the_market_closed(tmp_path: Path) -> None:
    """Closed through the emulator's config, behind the face: tests that need fills check 1003 instead."""
    with sandbox_face(market="closed") as face:
        result = run_contracts(face.url, "--contract-examples=3", "--contract-token-file", str(tmp_path / "token"),
                               env=login(face.url).environment())
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "runs when the market is closed" not in result.stdout  # test_1003 ran


def test_ten_runs_in_a_row_on_one_rate_limited_account_pass(open_face: Face, tmp_path: Path) -> None:
    """Nightly runs against one long-lived, rate-limited sandbox: each draws only from its own objects (no
    FlakyStrategyDefinition from what an earlier run left), keeps the rotated refresh token for the next, and leaves
    the account as it found it. The stateful and property tests are the ones whose draws could depend on it."""
    user = login(open_face.url, subject="nightly-owner")
    seed_portfolio(open_face, user)
    before = portfolio(open_face, user)
    kept = tmp_path / "token"
    for night in range(10):
        result = run_contracts(open_face.url, "--contract-examples=2", "--contract-token-file", str(kept),
                               env=user.environment(),  # the secret's refresh token is spent after the first night
                               paths=["contracts/test_stateful.py", "contracts/test_properties.py"])
        assert result.returncode == 0, (night, result.stdout[-5000:])
    assert portfolio(open_face, user) == before
    assert not [o for o in run_orders(open_face, "nightly-owner") if o["status"] in ("OPEN", "PARTIALLY_FILLED")]


def test_no_secret_is_printed_when_the_suite_fails(open_face: Face, tmp_path: Path) -> None:
    """Failures print curl reproducers, Hypothesis's falsifying examples and (with -l) every local, and go to the
    drift report and the job's step summary: none shows a token or the client secret; reproducers say $TOKEN."""
    user = login(open_face.url)
    kept = tmp_path / "token"
    fault = requests.post(f"{open_face.behind}/_mock/faults", json={"path": "^/v1/(account|orders)", "status": 500},
                          timeout=10)
    assert fault.status_code == 201, fault.text
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    try:
        result = run_contracts(open_face.url, "--contract-examples=2", "--contract-token-file", str(kept), "-l",
                               "--junitxml", str(tmp_path / "junit.xml"), "--contract-report",
                               str(tmp_path / "drift.md"), env={**user.environment(),
                                                                "GITHUB_STEP_SUMMARY": str(summary)})
    finally:
        requests.delete(f"{open_face.behind}/_mock/faults", timeout=10)
    report = (tmp_path / "drift.md").read_text()
    assert summary.read_text() == "earlier step\n" + report  # appended, as GitHub wants
    assert "**Drift:" in report and "### `getAccount`" in report and "500: " in report
    output = result.stdout + result.stderr + (tmp_path / "junit.xml").read_text() + report
    assert result.returncode == 1 and "500" in output
    assert "$TOKEN" in output
    for secret in (user.refresh_token, user.access_token, kept.read_text().strip()):
        pieces = {secret[i:i + 12] for i in range(len(secret) - 11)}  # nor any piece a shortened repr would leave
        assert not [piece for piece in pieces if piece in output]
    assert "sandbox-secret" not in output
    assert not re.search(r"Bearer eyJ[\w.-]{8,}", output)  # the run's own access token, however shortened


def test_an_interrupted_run_still_undoes_what_it_did(open_face: Face, tmp_path: Path) -> None:
    """Ctrl-C while the run waits for the answer to an order the target has already placed (so the run never saw
    it): pytest tears the run down, which finds the order by the run's prefix, cancels it or sells back what it
    bought; the owner's portfolio is as it was."""
    user = login(open_face.url, subject="interrupted-owner")
    seed_portfolio(open_face, user)
    before = portfolio(open_face, user)
    # Orders are placed at once and answered 3 s later: the run is waiting for an answer when an order appears.
    fault = requests.post(f"{open_face.behind}/_mock/faults", timeout=10,
                          json={"operation": "createOrder", "latency_ms": 3000})
    assert fault.status_code == 201, fault.text
    command, environ = contracts_command(open_face.url, "--contract-token-file", str(tmp_path / "token"),
                                         paths=["contracts/test_schema_conformance.py"], env=user.environment())
    environ["PYTHONFAULTHANDLER"] = "1"
    # Started from a background job (`make test &`, nohup), this process ignores SIGINT, and a child inherits an
    # ignored SIGINT: it would never see the Ctrl-C. A handler, unlike SIG_IGN, goes back to the default at exec.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
    finally:
        signal.signal(signal.SIGINT, inherited)
    try:
        eventually(lambda: run_orders(open_face, "interrupted-owner"), timeout=120, what="an order of the run")
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:  # what every thread of the run was doing
            process.send_signal(signal.SIGABRT)  # faulthandler (PYTHONFAULTHANDLER) prints each thread's stack
            output, _ = process.communicate(timeout=30)
            raise AssertionError(f"the interrupted run did not end within 120 s:\n{output[-8000:]}") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        requests.delete(f"{open_face.behind}/_mock/faults", timeout=10)
    assert "KeyboardInterrupt" in output, output[-3000:]
    assert re.search(r"cleanup: cancelled [1-9]|sold back [1-9]", output), output[-3000:]
    assert portfolio(open_face, user) == before
    assert not [o for o in run_orders(open_face, "interrupted-owner") if o["status"] in ("OPEN", "PARTIALLY_FILLED")]


def run_orders(face: Face, subject: str) -> list[dict[str, Any]]:
    """The run's orders on the account (seen behind the face), by their client_order_id prefix."""
    listed = requests.get(f"{face.behind}/_mock/accounts/acc_{subject}/orders", params={"limit": 500}, timeout=10)
    return [order for order in listed.json()["data"] if (order["client_order_id"] or "").startswith("tfc-")]


def test_a_running_emulator_is_left_as_the_suite_found_it(tmp_path: Path) -> None:
    """`make mock-up`, then the suite against it: its clock (moved by the expiry test), market mode (the user's
    `nyse`), rate limit and accounts are as they were; the suite's own accounts (acc_contract-…) are gone."""
    with console_script("--seed", "3", env={**os.environ, "TRADEFENCE_MARKET_MODE": "nyse"}) as (_, url):
        requests.post(f"{url}/_mock/accounts", json={"subject": "the-user"}, timeout=10)
        before = emulator_setting(url)
        result = run_contracts(url, "--contract-examples=2")  # all of it: any test may move the clock
        after = emulator_setting(url)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert after["accounts"] == before["accounts"] == ["acc_the-user"]
    assert (after["market_mode"], after["rate_limit"]) == (before["market_mode"], before["rate_limit"])
    assert abs(after["clock_offset"] - before["clock_offset"]) < 1  # seconds; the expiry test moves it 61 s


def emulator_setting(url: str) -> dict[str, Any]:
    state = requests.get(f"{url}/_mock/state", timeout=10).json()
    reading = requests.get(f"{url}/_mock/clock", timeout=10).json()["now"]
    offset = datetime.fromisoformat(reading.replace("Z", "+00:00")).timestamp() - time.time()
    accounts = sorted(a["id"] for a in requests.get(f"{url}/_mock/accounts", timeout=10).json()["data"])
    return {"market_mode": state["market_mode"], "rate_limit": state["rate_limit"], "clock_offset": offset,
            "accounts": accounts}
