"""A state file damaged on disk (a page) or by hand (a row) fails the start with one line naming the file and what
is wrong, and exit 2, as the other state errors do: never a traceback, never a server that 500s on its first write."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mock_server.app import create_app
from mock_server.config import Config
from tests.support.console import console_script
from tests.support.live import serve

SEED = 11
PAGE = 4096  # SQLite's default page size, which the store keeps


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state file as the emulator writes it: accounts with resting orders, grants, the clock."""
    path = tmp_path_factory.mktemp("state") / "pristine.db"
    app = create_app(Config(seed=SEED, state=str(path)))
    try:
        with serve(app) as url:
            for subject in ("ann", "bob", "cyd"):
                minted = requests.post(f"{url}/_mock/tokens", json={"subject": subject}, timeout=10)
                headers = {"Authorization": f"Bearer {minted.json()['access_token']}"}
                for price in (1, 2):
                    placed = requests.post(f"{url}/v1/orders", headers=headers, timeout=10, json={
                        "symbol": "AAPL", "side": "BUY", "type": "LIMIT", "quantity": 1, "price": price})
                    assert placed.status_code == 201, placed.text
    finally:
        app.extensions["tradefence"].close()
    assert not Path(f"{path}-wal").exists()  # all of it in the file itself
    return path


@pytest.fixture
def state(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "state.db"
    shutil.copy(pristine, copy)
    return copy


def start(state: Path) -> subprocess.CompletedProcess[str]:
    """The console script on `state`; a start that is not refused is stopped by the timeout (and fails the test)."""
    try:
        return subprocess.run([sys.executable, "-m", "mock_server", "--port", "0", "--quiet", "--seed", str(SEED),
                               "--state", str(state)], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the emulator started on a damaged file: {exc.stdout!r}") from None


def assert_refused(result: subprocess.CompletedProcess[str], state: Path, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tradefence-mock: state error: ") and str(state) in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]


def test_a_pristine_copy_starts(state: Path) -> None:
    """The copies below differ from this one only in the damage done to them."""
    with console_script("--seed", str(SEED), "--state", str(state)) as (_, url):
        assert len(requests.get(f"{url}/_mock/accounts", timeout=10).json()["data"]) == 3


@pytest.mark.parametrize("name", ["orders", "orders_by_subject"], ids=["table-page", "index-page"])
def test_a_damaged_page_fails_the_start(state: Path, name: str) -> None:
    """An index page is read only by a write that needs it: without a check at start, the first order would 500."""
    with sqlite3.connect(state) as db:
        (page,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    db.close()
    with state.open("r+b") as file:
        file.seek((page - 1) * PAGE + 8)  # the cell pointers, after the page header
        file.write(b"\xde\xad\xbe\xef" * 32)
    assert_refused(start(state), state, "damaged")


@pytest.mark.parametrize(("table", "change"), [
    ("accounts", "UPDATE accounts SET cash = 'lots'"),
    ("accounts", "UPDATE accounts SET cash = '-1e999'"),
    ("orders", "UPDATE orders SET data = 'not json' WHERE rowid = (SELECT min(rowid) FROM orders)"),
    ("orders", "UPDATE orders SET data = replace(data, '\"limit_price\":\"1.00\"', '\"limit_price\":\"NaN\"') "
               "WHERE data LIKE '%\"limit_price\":\"1.00\"%'"),
    ("grants", "UPDATE grants SET data = '{}'"),
    ("meta", "INSERT OR REPLACE INTO meta VALUES ('clock', '{\"frozen\": true}')"),
], ids=["cash-text", "cash-huge", "order-not-json", "price-nan", "grant-empty", "clock-partial"])
def test_a_row_that_does_not_decode_fails_the_start_naming_its_table(state: Path, table: str, change: str) -> None:
    with sqlite3.connect(state) as db:
        assert db.execute(change).rowcount > 0
    db.close()
    assert_refused(start(state), state, f"row in {table}")
