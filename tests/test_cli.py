"""The console script as users run it: a real process on a free port, stopped cleanly by Ctrl-C (SIGINT) or SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mock_server.cli import version
from mock_server.config import Config, ConfigError, load_config
from tests.support.console import Lines, console_script
from tests.support.receiver import receiver


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


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mock_server", *args], capture_output=True, text=True, timeout=30)


def test_version_names_the_installed_package() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"tradefence-mock {version()}"
    assert version()[0].isdigit()


def test_a_busy_port_is_one_line_naming_the_port_and_the_fix() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_cli("--port", str(port))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("args", "named"), [(["--port", "many"], "--port"), (["--port", "70000"], "port"),
                                              (["--host", "no-such-host.invalid"], "no-such-host.invalid"),
                                              (["--market-mode", "sometimes"], "--market-mode")])
def test_a_bad_setting_is_one_line_and_exit_2(args: list[str], named: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert named in result.stderr


def test_the_banner_says_where_everything_is_and_its_token_line_works() -> None:
    hook = "http://127.0.0.1:9/hook"
    with console_script("--seed", "3", "--webhook-url", hook) as (process, url):
        assert process.stdout is not None
        lines = Lines(process.stdout)
        rows = {}
        while not (line := lines.wait_for("").string).startswith("Ctrl-C"):
            label, _, text = line.strip().partition(" ")
            rows.setdefault(label, text.strip())
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    ws = "ws" + url.removeprefix("http")
    assert rows["API"] == f"{url}/v1"
    assert rows["Auth"] == f"{url}/authorize  {url}/token"
    assert rows["Stream"] == f"{ws}/market-data"
    assert rows["Dashboard"] == f"{url}/_mock/"
    assert rows["Client"] == "client_id sandbox-client  client_secret sandbox-secret"
    secret = Config(seed=3, webhook_url=hook).webhook_endpoints[0].secret
    assert rows["Webhooks"] == f"{hook} (all events), secret {secret} (made from the seed)"
    assert rows["Token"].startswith(f"curl -s {url}/_mock/tokens ")


@pytest.mark.skipif(shutil.which("curl") is None, reason="the banner's token line is a curl command; no curl here")
def test_the_banners_token_line_mints_a_token() -> None:
    with console_script() as (process, url):
        assert process.stdout is not None
        command = Lines(process.stdout).wait_for(r"^  Token +(curl .*)$").group(1)
        answer = json.loads(subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=10,
                                           check=True).stdout)
        account = requests.get(f"{url}/v1/account", headers={"Authorization": f"Bearer {answer['access_token']}"},
                               timeout=5)
        assert account.status_code == 200 and account.json()["id"] == "acc_sandbox-user"


def test_each_failed_webhook_attempt_is_one_log_line_as_it_happens(tmp_path: Path) -> None:
    config = tmp_path / "tradefence.toml"
    config.write_text("webhook_retry_schedule = [0.1]\nwebhook_retry_jitter = 0\n")
    with receiver() as hooks:
        hooks.plan = lambda _: 500
        with console_script("--config", str(config), "--webhook-url", f"{hooks.url}/hook") as (process, url):
            assert process.stderr is not None
            log = Lines(process.stderr)
            event = requests.post(f"{url}/_mock/events", json={"type": "order.filled"}, timeout=5).json()
            first = log.wait_for(r"^webhook (evt_\w+) \(order.filled\) to (\S+): attempt 1 failed \(HTTP 500\); "
                                 r"retry in 0\.1 s")
            assert first.groups() == (event["id"], f"{hooks.url}/hook")
            log.wait_for(rf"^webhook {event['id']} .*: attempt 2 failed \(HTTP 500\); gave up after 2 attempts")
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0


def test_a_stop_says_at_once_what_it_waits_for(tmp_path: Path) -> None:
    config = tmp_path / "tradefence.toml"
    config.write_text("webhook_retry_schedule = [30]\nwebhook_drain_seconds = 2\n")  # the retry is due after the drain
    with receiver() as hooks:
        hooks.plan = lambda _: 503
        with console_script("--config", str(config), "--webhook-url", f"{hooks.url}/hook") as (process, url):
            assert process.stdout is not None and process.stderr is not None
            out, log = Lines(process.stdout), Lines(process.stderr)
            requests.post(f"{url}/_mock/events", json={"type": "order.filled"}, timeout=5)
            log.wait_for(r"attempt 1 failed \(HTTP 503\); retry in")
            process.send_signal(signal.SIGINT)
            out.wait_for(r"^Stopping: up to 2 s for 1 pending webhook delivery \(what is left then is logged")
            assert process.wait(timeout=10) == 0
            log.wait_for(r"webhook dispatcher stopped with 1 pending deliveries: evt_")
