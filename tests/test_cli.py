"""The console script as users run it: a real process on a free port, stopped cleanly by Ctrl-C (SIGINT) or SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mock_server.config import ConfigError, load_config
from tests.support.console import console_script


@pytest.mark.parametrize(("stop", "sigint_ignored"), [(signal.SIGINT, False), (signal.SIGINT, True),
                                                     (signal.SIGTERM, False)], ids=["sigint", "sigint-in-background",
                                                                                    "sigterm"])
def test_serves_and_stops_cleanly_on_a_signal(stop: signal.Signals, sigint_ignored: bool) -> None:
    with console_script("--seed", "5", sigint_ignored=sigint_ignored) as (process, url):
        token = requests.post(f"{url}/_mock/tokens", json={"subject": "cli"}, timeout=5).json()["access_token"]
        response = requests.get(f"{url}/v1/account", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert response.status_code == 200
        process.send_signal(stop)
        assert process.wait(timeout=10) == 0  # the clean stop's exit code, not death by the signal (-2, -15)


def test_bad_config_fails_at_start_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "tradefence.toml"
    config.write_text('seed = 3\nmarket_mode = "sometimes"\n')
    result = subprocess.run([sys.executable, "-m", "mock_server", "--config", str(config)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2
    assert "market_mode" in result.stderr


def test_config_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "tradefence.toml"
    config.write_text('seed = 3\nport = 9000\nhost = "127.0.0.2"\n')
    loaded = load_config(config, {"SEED": "4", "PORT": "9100"}, port=9200)
    assert (loaded.seed, loaded.port, loaded.host) == (4, 9200, "127.0.0.2")


def test_unknown_config_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "tradefence.toml"
    config.write_text("sead = 3\n")
    try:
        load_config(config, {})
    except ConfigError as exc:
        assert "sead" in str(exc)
    else:
        raise AssertionError("an unknown key must fail")


def test_configured_accounts_exist_from_the_start_and_come_back_after_reset(tmp_path: Path) -> None:
    config = tmp_path / "tradefence.toml"
    config.write_text('[[accounts]]\nsubject = "alice"\ncash = 2500.5\n')
    with console_script("--config", str(config)) as (process, url):
        listed = requests.get(f"{url}/_mock/accounts", timeout=5).json()
        rows = listed["data"] if isinstance(listed, dict) else listed
        alice = next(a for a in rows if a["id"] == "acc_alice")
        assert alice["cash"] == 2500.5
        requests.post(f"{url}/_mock/reset", json={}, timeout=5)
        rows = requests.get(f"{url}/_mock/accounts", timeout=5).json()
        rows = rows["data"] if isinstance(rows, dict) else rows
        assert any(a["id"] == "acc_alice" and a["cash"] == 2500.5 for a in rows)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0


def test_bad_account_entry_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "tradefence.toml"
    config.write_text('[[accounts]]\nsubject = "bob"\ncash = "lots"\n')
    try:
        load_config(config, {})
    except ConfigError as exc:
        assert "accounts[0].cash" in str(exc)
    else:
        raise AssertionError("a bad cash value must fail")
