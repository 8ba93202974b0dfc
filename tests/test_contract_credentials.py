"""The contract suite's credentials survive rotation, fail loudly when unusable, and its own token is held to its
word: a 401 before `expires_in` or a 403 within its scopes is drift, never an accepted answer."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from contracts.checking import ContractViolation
from contracts.credentials import Credentials, TokenFile
from contracts.run import ContractRun, RunOptions, TokenOutlived
from contracts.targets import Target
from mock_server.spec.document import SpecDocument
from tests.support.contract_run import login, run_contracts
from tests.support.face import sandbox_face

ISSUED = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_the_token_file_is_replaced_whole_and_readable_only_by_its_owner(tmp_path: Path) -> None:
    kept = TokenFile(tmp_path / "ci" / "refresh-token")
    assert kept.read() is None
    kept.write("first-refresh-token")
    kept.write("second-refresh-token")
    assert kept.read() == "second-refresh-token"
    assert stat.S_IMODE(kept.path.stat().st_mode) == 0o600
    assert [p.name for p in kept.path.parent.iterdir()] == ["refresh-token"]  # no partial file left behind


def answer(method: str, url: str, status: int, token: str) -> requests.Response:
    made = requests.Response()
    made.status_code = status
    made._content = json.dumps({"error": {"code": 1001, "type": "authentication", "message": "no"}}).encode()
    made.headers["Content-Type"] = "application/json"
    made.request = requests.Request(method, url, headers={"Authorization": f"Bearer {token}"}).prepare()
    return made


def a_run(document: SpecDocument, now: datetime, scopes: str = "trading:read trading:write") -> ContractRun:
    target = Target("sandbox", "https://sandbox.test/v1", "https://auth.test", "wss://stream.test", None)
    run = ContractRun(RunOptions(target="sandbox"), target, document, now=lambda: now)
    run.credentials = Credentials("me", "", "run-access-token", None, frozenset(scopes.split()), ISSUED, 3600)
    return run


def test_a_401_for_the_run_s_token_before_it_expires_is_token_lifetime_drift(
        tradefence_spec_document: SpecDocument) -> None:
    run = a_run(tradefence_spec_document, ISSUED + timedelta(seconds=5))
    with pytest.raises(ContractViolation, match=r"\[getAccount\] token lifetime: .*5 s after it was issued"):
        run.observe(answer("GET", "https://sandbox.test/v1/account", 401, "run-access-token"))
    run.observe(answer("GET", "https://sandbox.test/v1/account", 401, "some-other-token"))  # a test's own token


def test_a_401_after_expiry_says_the_run_outlived_its_token(tradefence_spec_document: SpecDocument) -> None:
    run = a_run(tradefence_spec_document, ISSUED + timedelta(hours=2))
    with pytest.raises(TokenOutlived, match="refreshes once per run"):
        run.observe(answer("GET", "https://sandbox.test/v1/account", 401, "run-access-token"))


def test_a_403_within_the_token_s_scopes_is_drift_and_beyond_them_is_not(
        tradefence_spec_document: SpecDocument) -> None:
    run = a_run(tradefence_spec_document, ISSUED)
    with pytest.raises(ContractViolation, match=r"\[createOrder\] scopes honoured"):
        run.observe(answer("POST", "https://sandbox.test/v1/orders", 403, "run-access-token"))
    read_only = a_run(tradefence_spec_document, ISSUED, scopes="trading:read")
    read_only.observe(answer("POST", "https://sandbox.test/v1/orders", 403, "run-access-token"))


def test_credentials_never_show_their_secrets_in_a_repr() -> None:
    shown = repr(Credentials("me", "client-secret-x", "access-token-x", "refresh-token-x"))
    assert "secret-x" not in shown and "token-x" not in shown


@pytest.fixture(scope="module")
def face():
    with sandbox_face() as face:
        yield face


def test_spent_credentials_fail_the_run_saying_how_to_reseed(face, tmp_path: Path) -> None:
    seed = login(face.url)
    kept = tmp_path / "refresh-token"
    assert run_contracts(face.url, "--contract-token-file", str(kept), "-k", "getQuote",
                         env=seed.environment()).returncode == 0
    kept.unlink()  # a lost cache: the job falls back to the secret, which the first run spent
    result = run_contracts(face.url, "--contract-token-file", str(kept), "-k", "getQuote",
                           env=seed.environment())
    assert result.returncode == 1, result.stdout[-3000:]
    assert "unusable credentials" in result.stdout and "re-seed it" in result.stdout
    assert "1 error" in result.stdout.splitlines()[-1]
    assert seed.refresh_token not in result.stdout + result.stderr


def test_a_refresh_token_without_a_token_file_is_refused_before_it_is_spent(face, tmp_path: Path) -> None:
    seed = login(face.url)
    result = run_contracts(face.url, "-k", "getQuote", env=seed.environment())
    assert result.returncode == 1 and "pass --contract-token-file" in result.stdout
    kept = tmp_path / "refresh-token"  # the seed was not spent: a run that can keep its successor still signs in
    assert run_contracts(face.url, "--contract-token-file", str(kept), "-k", "getQuote",
                         env=seed.environment()).returncode == 0


def test_without_a_client_secret_the_tests_that_need_one_skip_saying_so(face) -> None:
    user = login(face.url)
    result = run_contracts(face.url, paths=["contracts/test_oauth.py"], env={"TRADEFENCE_CLIENT_ID": "sandbox-client",
                                                                    "TRADEFENCE_ACCESS_TOKEN": user.access_token})
    assert result.returncode == 0, result.stdout[-3000:]
    assert result.stdout.count("needs TRADEFENCE_CLIENT_SECRET") == 2
