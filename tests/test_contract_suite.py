"""The contract suite run the way users meet it: against the sandbox face (no control plane, the default rate
limit), with a CI job's credentials (a refresh token, the client id and secret) in its environment."""

from __future__ import annotations

from pathlib import Path

from tests.support.contract_run import login, run_contracts
from tests.support.face import sandbox_face


def test_the_suite_passes_behind_the_sandbox_face_politely(tmp_path: Path) -> None:
    with sandbox_face() as face:
        result = run_contracts(face.url, "--contract-examples=5", "--contract-token-file", str(tmp_path / "token"),
                               env=login(face.url).environment())
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "polite client:" in result.stdout
