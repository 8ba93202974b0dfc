"""Webhook configuration: the file, the environment and flags; bad values fail at start naming the key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from mock_server.config import Config, ConfigError, WebhookConfig, load_config
from tests.support.console import Lines, console_script

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_webhooks_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "tradefence.toml"
    path.write_text(
        'webhook_retry_schedule = [0.5, 1, 2]\nwebhook_timeout = 2.5\nalert_loss_percent = 2.5\n'
        '[[webhooks]]\nurl = "https://example.com/hooks"\nevents = ["order.filled"]\n'
        f'[[webhooks]]\nurl = "http://127.0.0.1:5000/all"\nsecret = "{SECRET}"\n'
    )
    config = load_config(path, {"TRADEFENCE_WEBHOOK_URL": "http://127.0.0.1:9000/hook"})
    assert config.webhook_retry_schedule == (0.5, 1.0, 2.0)
    assert (config.webhook_timeout, config.alert_loss_percent) == (2.5, Decimal("2.5"))
    endpoints = config.webhook_endpoints
    assert [(e.url, e.events) for e in endpoints] == [
        ("http://127.0.0.1:9000/hook", None), ("https://example.com/hooks", ("order.filled",)),
        ("http://127.0.0.1:5000/all", None)]
    assert endpoints[2].secret == SECRET
    # Secrets not given are made from the seed: the same on every start with that seed, different per endpoint.
    assert endpoints[0].secret.startswith("whsec_") and endpoints[0].secret != endpoints[1].secret
    assert load_config(path, {"TRADEFENCE_WEBHOOK_URL": "http://127.0.0.1:9000/hook"}).webhook_endpoints == endpoints
    assert load_config(path, {"TRADEFENCE_WEBHOOK_SECRET": SECRET, "TRADEFENCE_WEBHOOK_URL": "http://h/x"},
                       webhook_url="http://flag/x").webhook_endpoints[0] == WebhookConfig("http://flag/x", SECRET)


@pytest.mark.parametrize(("text", "key"), [
    ('webhook_url = "localhost:3000/hook"\n', "webhook_url"),
    ('webhook_secret = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\n', "webhook_secret"),
    ("webhook_timeout = 0\n", "webhook_timeout"),
    ('webhook_retry_schedule = [1, -2]\n', "webhook_retry_schedule"),
    ('webhook_retry_schedule = "soon"\n', "webhook_retry_schedule"),
    ("webhook_retry_jitter = 1.5\n", "webhook_retry_jitter"),
    ("alert_loss_percent = -5\n", "alert_loss_percent"),
    ('alert_move_percent = "lots"\n', "alert_move_percent"),
    ('[[webhooks]]\nurl = "ftp://example.com"\n', "webhooks[0].url"),
    ('[[webhooks]]\nurl = "http://a.test"\nevents = ["order.placed"]\n', "webhooks[0].events"),
    ('[[webhooks]]\nurl = "http://a.test"\nsecret = "nope"\n', "webhooks[0].secret"),
    ('[[webhooks]]\nurl = "http://a.test"\nretries = 3\n', "retries"),
    ('[[webhooks]]\nsecret = "whsec_AAAA"\n', "webhooks[0]"),
])
def test_a_bad_webhook_value_fails_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "tradefence.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_config(path, {})


def test_a_bad_environment_value_names_the_variable_and_never_echoes_a_secret() -> None:
    with pytest.raises(ConfigError, match="TRADEFENCE_WEBHOOK_URL"):
        load_config(None, {"TRADEFENCE_WEBHOOK_URL": "not a url"})
    with pytest.raises(ConfigError, match="TRADEFENCE_WEBHOOK_SECRET") as caught:
        load_config(None, {"TRADEFENCE_WEBHOOK_SECRET": "whsec_secret!stuff"})
    assert "secret!stuff" not in str(caught.value)
    with pytest.raises(ConfigError, match="webhook_timeout"):
        Config(webhook_timeout=-1)


def test_the_cli_prints_the_secret_it_made_and_stops_cleanly() -> None:
    with console_script("--seed", "11", "--webhook-url", "http://127.0.0.1:9/hook",
                        env={**os.environ, "TRADEFENCE_WEBHOOK_SECRET": ""}) as (process, _url):
        assert process.stdout is not None
        webhooks = Lines(process.stdout).wait_for(r"^  Webhooks +(.*)$").group(1)  # a row of the banner
        secret = Config(seed=11, webhook_url="http://127.0.0.1:9/hook").webhook_endpoints[0].secret
        assert webhooks == f"http://127.0.0.1:9/hook (all events), secret {secret} (made from the seed)"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0


def test_the_cli_refuses_a_bad_webhook_url_naming_it() -> None:
    result = subprocess.run([sys.executable, "-m", "mock_server", "--port", "0"], capture_output=True, text=True,
                            timeout=30, env={**os.environ, "TRADEFENCE_WEBHOOK_URL": "127.0.0.1:9/hook"})
    assert result.returncode == 2
    assert "TRADEFENCE_WEBHOOK_URL" in result.stderr
