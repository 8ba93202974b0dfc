"""The server's worker threads: every job runs, a job that raises is logged and its thread serves on, and `stop`
ends them all without waiting for the jobs still queued."""

from __future__ import annotations

import logging
import threading

import pytest

from mock_server.serving.workers import Workers


def test_every_job_runs_and_one_that_raises_is_logged_while_its_thread_serves_on(
        caplog: pytest.LogCaptureFixture) -> None:
    workers = Workers(1, "test")  # one thread: the jobs after the failing one prove it served on
    done: list[int] = []
    finished = threading.Semaphore(0)

    def job(n: int) -> None:
        if n == 3:
            raise ValueError("job 3 fails")
        done.append(n)
        finished.release()

    try:
        with caplog.at_level(logging.ERROR, logger="tradefence.server"):
            for n in range(10):
                workers.submit(job, n)
            for _ in range(9):
                assert finished.acquire(timeout=5)
        assert done == [0, 1, 2, 4, 5, 6, 7, 8, 9]
        assert any("job 3 fails" in (record.exc_text or str(record.exc_info)) for record in caplog.records)
    finally:
        workers.stop()


def test_stop_drops_queued_jobs_and_ends_the_threads() -> None:
    workers = Workers(1, "test-stop")
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def hold(_: object) -> None:
        started.set()
        release.wait(5)

    workers.submit(hold, None)
    assert started.wait(5)
    workers.submit(ran.append, "queued behind the held job")
    workers.stop()  # returns at once, with the one thread still in `hold`
    release.set()
    threads = [thread for thread in threading.enumerate() if thread.name.startswith("test-stop_")]
    for thread in threads:
        thread.join(5)
    assert not any(thread.is_alive() for thread in threads) and ran == []
