"""The contract suite must fail on every deliberately wrong emulator (tests/support/mutants.py), and for the reason
the mutant names: its killer test, failing on its check. A kill by any other failure is luck, not proof.

Each mutant runs twice: with the control plane (the emulator as `make mock-up` serves it), and behind the sandbox
face (no `/_mock`, the default rate limit, credentials from a refresh token), where only the public API can see
it. A run is one process that serves the mutant and runs only its killer against it (`python -m
tests.support.mutants NAME --check TEST`, forked from a worker that imported everything once): a whole-suite run
per mutant would cost ten times as much. The clean
runs run every killer against the plain emulator, once per face configuration the killers need: a killer that
fails there proves nothing about its mutant. Kill rates are printed and reported in the README.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.mutants import MUTANTS, FaceSetup, Kill

ROOT = Path(__file__).resolve().parents[1]
# The same examples every run, as many as a default run draws: a mutant that only a lucky input exposes could
# survive one run in many, and a kill rate must not depend on luck (users' CI runs keep hypothesis's random search).
HYPOTHESIS_SEED = 20261125
WORKERS = 4  # runs wait on rate limits, heartbeats and token lifetimes as much as they compute
CONTROL = FaceSetup()
# Killers that wait for the clock: a heartbeat's interval, a token's age, a model's many steps.
WAITING = ("test_heartbeats_come", "test_the_token_works", "test_account_model")


@dataclass(frozen=True)
class Run:
    """One process: a mutant (or `none`) served with the control plane or behind the face, and contract tests
    against it. `kill` is the failure the run must end in; None: every test must pass."""

    mutant: str
    face: bool
    setup: FaceSetup
    tests: tuple[str, ...]
    kill: Kill | None

    def arguments(self, junit: Path) -> list[str]:
        """For `python -m tests.support.mutants`."""
        command = [self.mutant, "--junitxml", str(junit), "--hypothesis-seed", str(HYPOTHESIS_SEED),
                   "--check", *self.tests]
        if self.face:
            command += ["--face", "--market", self.setup.market]
            if self.setup.access_token_ttl is not None:
                command += ["--access-token-ttl", str(self.setup.access_token_ttl)]
            if self.setup.webhooks:
                command.append("--webhooks")
            if self.setup.destructive:
                command.append("--destructive")
        return command


@dataclass(frozen=True)
class Outcome:
    run: Run
    results: dict[str, tuple[str, str]]  # node id -> (passed | failed | error | skipped, what the failure says)
    seconds: float
    output: str

    @property
    def verdict(self) -> str:
        if self.run.kill is None:
            broken = [test for test, (outcome, _) in self.results.items() if outcome != "passed"]
            ran = {test.split("[")[0] for test in self.results} | set(self.results)
            missing = [test for test in self.run.tests if test not in ran]
            return "clean" if not broken and not missing else f"not clean: {broken or missing}"
        outcome, text = self.results.get(self.run.kill.test, ("not run", ""))
        if outcome in ("failed", "error") and self.run.kill.check in text:
            return "killed"
        if outcome in ("failed", "error"):
            return "killed by another check"
        return "survived" if outcome in ("passed", "skipped") else outcome

    def why(self) -> str:
        failed = [f"{test}: {outcome}\n{text[-1500:]}" for test, (outcome, text) in self.results.items()
                  if outcome != "passed"]
        return "\n".join(failed) or self.output[-2000:]


def node_id(case: ElementTree.Element) -> str:
    module = case.get("classname", "").replace(".", "/")
    return f"{module}.py::{case.get('name')}"


class Worker:
    """A `python -m tests.support.mutants --worker` process: it imports what runs need once and forks a child per
    run, so a run costs what its tests cost rather than a Python start with pytest, schemathesis and Flask."""

    def __init__(self) -> None:
        self._process = subprocess.Popen([sys.executable, "-m", "tests.support.mutants", "--worker"], cwd=ROOT,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def execute(self, run: Run) -> Outcome:
        assert self._process.stdin is not None and self._process.stdout is not None
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="mutant-") as folder:
            junit, log = Path(folder) / "junit.xml", Path(folder) / "run.log"
            self._process.stdin.write(json.dumps([run.arguments(junit), str(log)]) + "\n")
            self._process.stdin.flush()
            self._process.stdout.readline()  # the run's exit status: what it says is in the junit report
            results = read_junit(junit) if junit.exists() else {}
            output = log.read_text(errors="replace") if log.exists() else ""
        return Outcome(run, results, time.monotonic() - started, output)

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


def read_junit(junit: Path) -> dict[str, tuple[str, str]]:
    results: dict[str, tuple[str, str]] = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        outcome, text = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = "failed" if child.tag == "failure" else child.tag
                text = f"{child.get('message', '')}\n{child.text or ''}"
        results[node_id(case)] = (outcome, text)
    return results


def execute(runs: list[Run]) -> list[Outcome]:
    """Every run, on `WORKERS` workers; the outcomes in the order of `runs`."""
    pending: queue.Queue[tuple[int, Run]] = queue.Queue()
    for item in enumerate(runs):
        pending.put(item)
    outcomes: dict[int, Outcome] = {}

    def drain() -> None:
        worker = Worker()
        try:
            while True:
                try:
                    index, run = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    outcomes[index] = worker.execute(run)
                except OSError as exc:  # the worker itself died: every run left to it says so
                    outcomes[index] = Outcome(run, {}, 0.0, f"the worker died: {exc!r}")
        finally:
            worker.close()

    threads = [threading.Thread(target=drain, name=f"mutation-worker-{n}") for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [outcomes[index] for index in range(len(runs))]


def campaign() -> list[Run]:
    """Every mutant with the control plane and (unless hidden) behind the face; then the clean runs: every killer
    against the plain emulator under each configuration it is run in."""
    runs = [Run(m.name, False, CONTROL, (m.kill.test,), m.kill) for m in MUTANTS]
    runs += [Run(m.name, True, m.setup, (m.face_kill.test,), m.face_kill) for m in MUTANTS if m.face_kill]
    killers: dict[tuple[bool, FaceSetup], set[str]] = defaultdict(set)
    for run in runs:
        killers[(run.face, run.setup)].update(run.tests)
    clean = [Run("none", face, setup, tuple(sorted(tests)), None) for (face, setup), tests in killers.items()]
    # The longest first, so that no worker is left with one at the end: the clean runs, then killers that wait.
    return clean + sorted(runs, key=lambda run: not any(name in run.tests[0] for name in WAITING))


def report(outcomes: list[Outcome], seconds: float) -> str:
    lines = []
    for face, title in ((False, "with the control plane"), (True, "behind the sandbox face")):
        killed = sum(o.verdict == "killed" for o in outcomes if o.run.face == face and o.run.kill)
        lines.append(f"mutation kill rate {title}: {killed}/{len(MUTANTS)}")
    hidden = [m for m in MUTANTS if m.hidden]
    lines += [f"  not seen by a public-API-only run: {m.name} ({m.hidden})" for m in hidden]
    for outcome in outcomes:
        where = "face   " if outcome.run.face else "control"
        lines.append(f"  {outcome.verdict:24} {where} {outcome.run.mutant:28} {outcome.seconds:5.1f} s  "
                     f"{outcome.run.kill.check if outcome.run.kill else ', '.join(outcome.run.tests)[:60]}")
    lines.append(f"self-test: {len(outcomes)} runs in {seconds:.0f} s")
    return "\n".join(lines)


def test_every_mutant_dies_by_its_named_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(MUTANTS) >= 40
    assert all(m.kill.test.startswith("contracts/") for m in MUTANTS)
    started = time.monotonic()
    outcomes = execute(campaign())
    with capsys.disabled():
        print("\n" + report(outcomes, time.monotonic() - started))
    wrong = [o for o in outcomes if o.verdict not in ("killed", "clean")]
    assert not wrong, "\n\n".join(
        f"{o.run.mutant} ({'face' if o.run.face else 'control'}): {o.verdict}, expected "
        f"{o.run.kill.check if o.run.kill else 'every killer to pass'} from {o.run.kill.test if o.run.kill else ''}"
        f"\n{o.why()}" for o in wrong)
