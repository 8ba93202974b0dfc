"""Patterns a client supplies (the journal's and the faults' `path`) cannot make a search backtrack.

`^/v1/(a+)+$` against a path of n a's and a `!` costs a backtracking engine 2^n steps: 29 a's held a request for
12 s. The emulator runs in a process of its own here, and each request has a client timeout, so a regression
fails the test instead of hanging the run (the process is killed on the way out).
"""

from __future__ import annotations

import pytest
from flask import Flask

from tests.support.console import console_script
from tests.support.live import CheckedSession, spec_session

CATASTROPHIC = "^/v1/orders/(a+)+$"
VICTIM = "/v1/orders/" + "a" * 64 + "!"  # 2^64 steps for a backtracking engine; one pass for RE2
TIMEOUT = 10  # seconds: generous for a linear search, hopeless for a backtracking one


@pytest.fixture
def emulator(app: Flask):
    """A spec-checked session on an emulator process (`app` only provides the spec and routes to check with)."""
    with console_script() as (_, url), spec_session(url, app) as session:
        yield session


def test_the_journal_path_filter_runs_in_linear_time(emulator: CheckedSession) -> None:
    assert emulator.get(VICTIM, timeout=TIMEOUT).status_code == 401
    everything = emulator.get("/_mock/journal", timeout=TIMEOUT).json()["data"]
    assert [entry["path"] for entry in everything] == [VICTIM]  # recorded before its answer went out

    found = emulator.get("/_mock/journal", params={"path": CATASTROPHIC}, timeout=TIMEOUT)
    assert found.status_code == 200
    assert found.json()["data"] == []
    matching = emulator.get("/_mock/journal", params={"path": "^/v1/orders/(a+)+!$"}, timeout=TIMEOUT)
    assert [entry["path"] for entry in matching.json()["data"]] == [VICTIM]


def test_a_fault_path_runs_in_linear_time(emulator: CheckedSession) -> None:
    created = emulator.post("/_mock/faults", json={"path": CATASTROPHIC, "status": 503}, timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    assert emulator.get(VICTIM, timeout=TIMEOUT).status_code == 401  # not matched: the request goes on
    forced = emulator.post("/_mock/faults", json={"path": "^/v1/orders/(a+)+!$", "status": 503}, timeout=TIMEOUT)
    assert forced.status_code == 201, forced.text
    assert emulator.get(VICTIM, timeout=TIMEOUT).status_code == 503


@pytest.mark.parametrize("pattern", [r"^/v1/(a+)\1$", "^/v1/(?=orders)", "(?<!x)/v1"],
                         ids=["backreference", "lookahead", "lookbehind"])
def test_a_pattern_only_backtracking_could_run_is_a_400_naming_path(http: CheckedSession, pattern: str) -> None:
    listed = http.get("/_mock/journal", params={"path": pattern})
    assert listed.status_code == 400
    assert listed.json()["error"]["field"] == "path"
    assert "RE2" in listed.json()["error"]["message"]

    created = http.post("/_mock/faults", json={"path": pattern, "latency_ms": 10})
    assert created.status_code == 400
    assert created.json()["error"]["field"] == "path"
