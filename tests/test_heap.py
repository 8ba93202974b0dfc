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
        assert gc.get_threshold() == heap.AUTOMATIC_THRESHOLDS
        assert gc.callbacks.count(heap._freeze_after_full_collection) == 1
        kept = [[i] for i in range(50_000)]  # long-lived, tracked objects
        gc.collect(2)
        walked = {id(item) for item in gc.get_objects()}  # every object the collector still walks
        assert not any(id(item) in walked for item in kept)
        assert len(gc.get_objects(generation=2)) < 1_000  # what the next full collection walks
        print("ok")
    """)
    assert out == "ok"


def test_start_up_runs_no_collection_and_the_collector_is_back_on_after_it() -> None:
    """What the CLI does: `pause` before the modules load, `collect_incrementally` once the server is built."""
    out = run_python("""
        import gc
        from mock_server import heap
        ran = []
        gc.callbacks.append(lambda phase, info: phase == "start" and ran.append(info["generation"]))
        heap.pause()
        built = [[i] for i in range(heap.AUTOMATIC_THRESHOLDS[0] * 3)]  # what start-up builds, and more
        assert ran == [] and not gc.isenabled()
        heap.collect_incrementally()
        assert gc.isenabled() and gc.get_threshold() == heap.AUTOMATIC_THRESHOLDS
        walked = {id(item) for item in gc.get_objects()}
        assert not any(id(item) in walked for item in built)  # frozen, without a full pass
        assert ran == []
        more = [[i] for i in range(heap.AUTOMATIC_THRESHOLDS[0] * 3)]
        assert ran, "automatic collection did not come back on"
        print("ok")
    """)
    assert out == "ok"


def test_between_answers_the_collection_cpython_would_have_run_by_now_runs() -> None:
    """`collect_if_due` picks the generation CPython's automatic collection picks at `THRESHOLDS` (the oldest whose
    count is over its threshold); below generation 0's threshold it collects nothing."""
    out = run_python("""
        import gc
        from mock_server import heap
        heap.collect_incrementally()
        ran = []
        gc.callbacks.append(lambda phase, info: phase == "start" and ran.append(info["generation"]))
        gc.collect(2); ran.clear()
        kept = []
        def allocate(count):  # tracked objects that stay: generation 0's count grows by `count`
            kept.extend([] for _ in range(count))
        allocate(heap.THRESHOLDS[0] // 2)
        heap.collect_if_due()
        assert ran == [], ran  # not due: automatic collection would not have run either
        assert heap.THRESHOLDS[0] * 2 < heap.AUTOMATIC_THRESHOLDS[0]  # and it did not run on its own meanwhile
        for _ in range(heap.THRESHOLDS[1] + 2):
            allocate(heap.THRESHOLDS[0] + 1)
            heap.collect_if_due()
        assert ran == [0] * (heap.THRESHOLDS[1] + 1) + [1], ran  # generation 1 once its count is over 10
        ran.clear()
        while 2 not in ran:
            allocate(heap.THRESHOLDS[0] + 1)
            heap.collect_if_due()
        # After a second generation-1 collection (the first was above) the next one due is full.
        assert ran == [0] * (heap.THRESHOLDS[1] + 1) + [1, 2], ran
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
