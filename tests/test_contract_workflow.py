"""The nightly workflow to copy (.github/workflows/contracts.yml) keeps the newest refresh token between runs: its
own shell steps, run here around real contract runs behind the sandbox face, carry the token from one run to the
next through an encrypted file, also when a run fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.contract_run import ROOT, login, run_contracts
from tests.support.face import sandbox_face

WORKFLOW = ROOT / ".github" / "workflows" / "contracts.yml"


def steps() -> dict[str, dict[str, Any]]:
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["contracts"]
    return {step.get("name", step.get("uses", "")): step for step in job["steps"]}


def test_the_token_file_is_kept_by_steps_that_run_even_after_a_failure() -> None:
    found = steps()
    run = found["Run the contracts against the sandbox"]["run"]
    assert '--contract-token-file "$TOKEN_FILE"' in run and "--contract-report" in run
    for name in ("Encrypt the newest refresh token", "Keep it for the next run"):
        assert found[name]["if"].startswith("always()")
    restore, save = found["Restore the newest refresh token"], found["Keep it for the next run"]
    assert restore["with"]["restore-keys"] == "tradefence-refresh-token-" and "!inputs.reseed" in restore["if"]
    assert save["with"]["key"].startswith("tradefence-refresh-token-") and "run_id" in save["with"]["key"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the workflow's steps need openssl")
def test_two_nightly_runs_carry_the_rotated_token_through_the_workflow_s_own_steps(tmp_path: Path) -> None:
    found = steps()
    environ = {**os.environ, "TOKEN_FILE": str(tmp_path / "ci" / "refresh-token"), "TOKEN_FILE_KEY": "k" * 40}

    def step(name: str) -> None:
        subprocess.run(["bash", "-euo", "pipefail", "-c", found[name]["run"]], env=environ, check=True, cwd=tmp_path)

    with sandbox_face() as face:
        seed = login(face.url)
        for night in range(2):
            step("Decrypt it")
            result = run_contracts(face.url, "--contract-token-file", environ["TOKEN_FILE"], "-k", "getQuote",
                                   env=seed.environment())  # the secret stays the seed, spent after night one
            assert result.returncode == 0, (night, result.stdout[-3000:])
            step("Encrypt the newest refresh token")
            encrypted = Path(environ["TOKEN_FILE"] + ".enc").read_bytes()
            assert not Path(environ["TOKEN_FILE"]).exists() and seed.refresh_token.encode() not in encrypted
