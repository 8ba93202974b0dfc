"""The contract suite must pass on the emulator and fail on every deliberately wrong one (tests/mutants.py).

Each mutant is a real emulator process with one contract broken; against it runs the real
`pytest contracts --target=URL` in another process, stopping at the first broken contract. The kill rate is
printed.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.mutants import MUTANTS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = "8"
# The same examples every run: with 8 random ones a mutant that only a lucky input exposes could survive one run
# in many, and a kill rate must not depend on luck (users' CI runs keep hypothesis's random search).
HYPOTHESIS_SEED = 20261125


def run_contracts_against(mutant: str) -> subprocess.CompletedProcess[str]:
    server = subprocess.Popen([sys.executable, "-m", "tests.mutants", mutant], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), f"mutant {mutant} did not start"
        return subprocess.run(
            [sys.executable, "-m", "pytest", "contracts", f"--target={url}", f"--contract-examples={EXAMPLES}",
             f"--hypothesis-seed={HYPOTHESIS_SEED}", "-x", "-q", "-p", "no:cacheprovider", "--no-header",
             "-o", "addopts="],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_the_contract_suite_passes_on_the_emulator() -> None:
    result = run_contracts_against("none")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_the_contract_suite_kills_every_mutant(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(MUTANTS) >= 20
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(zip(MUTANTS, pool.map(run_contracts_against, [m.name for m in MUTANTS]), strict=True))
    survivors = [(m, r) for m, r in results if r.returncode != 1]
    with capsys.disabled():
        print(f"\nmutation kill rate: {len(results) - len(survivors)}/{len(results)}")
        for mutant, result in results:
            failed = next((line for line in result.stdout.splitlines() if line.startswith("FAILED")), "")
            print(f"  {'killed ' if result.returncode == 1 else 'SURVIVED'} {mutant.name:32} {failed[:100]}")
    assert not survivors, "\n\n".join(f"{m.name} ({m.breaks}) survived, exit {r.returncode}:\n{r.stdout[-1500:]}"
                                      for m, r in survivors)
