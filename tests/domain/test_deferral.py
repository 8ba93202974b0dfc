"""Work held for the length of a call and released after it (`domain/deferral.py`)."""

from __future__ import annotations

import logging
import threading

import pytest

from mock_server.domain.deferral import Deferral


def test_without_a_hold_work_runs_at_once() -> None:
    ran: list[int] = []
    Deferral().run(lambda: ran.append(1))
    assert ran == [1]


def test_held_work_waits_for_the_release_and_runs_once_in_order() -> None:
    deferral, ran = Deferral(), []
    deferral.hold()
    deferral.run(lambda: ran.append(1))
    deferral.run(lambda: ran.append(2))
    assert ran == []
    deferral.release()
    deferral.release()  # a second release finds nothing more
    assert ran == [1, 2]
    deferral.run(lambda: ran.append(3))  # the hold is over
    assert ran == [1, 2, 3]


def test_work_deferred_by_released_work_runs_at_once() -> None:
    deferral, ran = Deferral(), []
    deferral.hold()
    deferral.run(lambda: deferral.run(lambda: ran.append("inner")))
    deferral.release()
    assert ran == ["inner"]


def test_a_hold_is_this_threads_only() -> None:
    """Another thread's work (the alert watcher's fills) never waits for this thread's answer."""
    deferral, ran = Deferral(), []
    deferral.hold()
    other = threading.Thread(target=deferral.run, args=(lambda: ran.append("other"),))
    other.start()
    other.join()
    assert ran == ["other"]
    deferral.release()


def test_work_of_a_hold_never_released_runs_at_the_next_hold() -> None:
    """A request that never reached its release (its answer was never closed) loses nothing."""
    deferral, ran = Deferral(), []
    deferral.hold()
    deferral.run(lambda: ran.append("stale"))
    deferral.hold()
    assert ran == ["stale"]
    deferral.release()


def test_a_failing_piece_is_logged_and_the_rest_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    deferral, ran = Deferral(), []

    def fail() -> None:
        raise RuntimeError("boom")

    deferral.hold()
    deferral.run(fail)
    deferral.run(lambda: ran.append("after"))
    with caplog.at_level(logging.ERROR):
        deferral.release()
    assert ran == ["after"] and "deferred work failed" in caplog.text


def test_disabled_runs_everything_at_once() -> None:
    deferral, ran = Deferral(enabled=False), []
    deferral.hold()
    deferral.run(lambda: ran.append(1))
    assert ran == [1]
    deferral.release()
    assert ran == [1]
