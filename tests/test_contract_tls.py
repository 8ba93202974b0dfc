"""The contract suite against an https:// target (the emulator's `--tls`): HTTP and the wss:// stream trust the CA
given with `--contract-ca` (or REQUESTS_CA_BUNDLE); without it the run fails on the certificate, saying so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mock_server.app import create_app
from mock_server.config import Config
from mock_server.serving import serve
from mock_server.serving.tls import LocalCA
from tests.support.contract_run import run_contracts

# One HTTP check, the OAuth code flow the suite signs in with, and the market-data stream over wss://.
SUBSET = "getQuote or subscribe_acknowledges"


@pytest.fixture(scope="module")
def https_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    ca = LocalCA(tmp_path_factory.mktemp("ca"))
    app = create_app(Config(seed=7, rate_limit_capacity=100_000, rate_limit_per_second=100_000.0))
    try:
        with serve(app, tls=ca.server_context()) as url:
            yield url, ca.cert_path
    finally:
        app.extensions["tradefence"].close()


def test_https_and_wss_targets_are_trusted_through_the_given_ca(https_emulator: tuple[str, Path]) -> None:
    url, ca = https_emulator
    assert url.startswith("https://")
    given = run_contracts(url, "--contract-ca", str(ca), "-k", SUBSET)
    assert given.returncode == 0, given.stdout[-4000:]
    assert "4 passed" in given.stdout  # getQuote without and with a bad token, and with 1004; the wss:// stream
    from_environment = run_contracts(url, "-k", SUBSET, env={"REQUESTS_CA_BUNDLE": str(ca)})
    assert from_environment.returncode == 0, from_environment.stdout[-4000:]


def test_an_untrusted_certificate_fails_the_run_saying_so(https_emulator: tuple[str, Path]) -> None:
    url, _ = https_emulator
    result = run_contracts(url, "-k", SUBSET)
    assert result.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in result.stdout
