"""The collector policy of the server process (`mock_server/heap.py`). It changes process-wide state (thresholds,
callbacks, the frozen generation), so each check runs in a fresh interpreter, never in the test process."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_full_collection_freezes_its_survivors_so_the_next_walks_only_what_is_new() -> None:
    out = run_python("""
        import gc
        from mock_server import heap
        heap.collect_incrementally()
        heap.collect_incrementally()  # twice: still one callback
        assert gc.get_threshold() == heap.THRESHOLDS
        assert gc.callbacks.count(heap._freeze_after_full_collection) == 1
        kept = [[i] for i in range(50_000)]  # long-lived, tracked objects
        gc.collect(2)
        walked = {id(item) for item in gc.get_objects()}  # every object the collector still walks
        assert not any(id(item) in walked for item in kept)
        assert len(gc.get_objects(generation=2)) < 1_000  # what the next full collection walks
        print("ok")
    """)
    assert out == "ok"


def test_a_cycle_that_dies_frozen_is_found_once_thawed() -> None:
    out = run_python("""
        import gc, weakref
        from mock_server import heap
        heap.collect_incrementally()
        class Node: pass
        node = Node(); node.self = node  # a reference cycle: only the collector frees it
        alive = weakref.ref(node)
        gc.collect(2)  # survives, and is frozen
        del node
        gc.collect()
        assert alive() is not None  # frozen: the collector cannot see it died
        heap.thaw()
        gc.collect()
        assert alive() is None
        print("ok")
    """)
    assert out == "ok"


def test_services_replaced_by_a_reseed_are_collected_under_the_policy() -> None:
    out = run_python("""
        import gc, weakref
        from mock_server import heap
        from mock_server.app import create_app
        from mock_server.config import Config
        app = create_app(Config(seed=1))
        heap.collect_incrementally()  # as the CLI does: start-up's services are frozen now
        old = weakref.ref(app.extensions["tradefence"].engine)
        answer = app.test_client().post("/_mock/seed", json={"seed": 2})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        gc.collect()
        assert old() is None, "the replaced services were never collected"
        print("ok")
    """)
    assert out == "ok"
