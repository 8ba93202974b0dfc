"""The package as a user gets it: a wheel built from this checkout, installed into a fresh virtualenv, runs the
how-tos (docs/howto) in a project of their own, where only the installed pytest plugins provide the fixtures.
Installed without the `contracts` extra (the fixture needs none of it), the contract suite's plugin stays out of
the way and `--target` says what to install; with the extra, the suite runs from the wheel.

This catches what the editable install of the repository hides: a module, openapi.yaml or a dashboard file left
out of the wheel, an entry point that does not load, a fixture that needs something from this checkout. It costs
a virtualenv and a dependency install (about a minute), so it runs once, with every how-to in it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(command: list[str], cwd: Path, timeout: float, expect: int = 0) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == expect, (f"{' '.join(command)}: exit {result.returncode}\n{result.stdout}\n"
                                         f"{result.stderr}")
    return result.stdout + result.stderr


def test_the_how_tos_pass_in_a_project_that_installed_the_wheel(tmp_path: Path) -> None:
    quiet = ["--quiet", "--disable-pip-version-check"]
    run([sys.executable, "-m", "pip", "wheel", *quiet, "--no-deps", "--wheel-dir", str(tmp_path / "dist"),
         str(ROOT)], tmp_path, 300)
    (wheel,) = (tmp_path / "dist").glob("tradefence_sandbox-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, 120)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", *quiet, str(wheel), "pytest"], tmp_path, 600)

    project = tmp_path / "project"
    project.mkdir()
    for howto in (ROOT / "docs" / "howto").glob("test_*.py"):
        shutil.copy(howto, project)
    tests = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    out = run(tests, project, 300)
    assert " passed" in out and "failed" not in out and "error" not in out, out

    out = run([*tests, "--target=mock"], project, 120, expect=pytest.ExitCode.USAGE_ERROR)
    assert "pip install 'tradefence-sandbox[contracts]'" in out, out

    run([str(python), "-m", "pip", "install", *quiet, f"{wheel}[contracts]"], tmp_path, 600)
    out = run([*tests, "--pyargs", "contracts.test_oauth", "--target=mock"], project, 300)
    assert " passed" in out and "failed" not in out, out
