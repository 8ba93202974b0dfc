"""A stop signal stops the server wherever the main thread happens to be when it arrives.

The CLI used to raise KeyboardInterrupt from its signal handler. Python runs a handler between two bytecodes of
the main thread, wherever that is: inside a garbage collector's callback (the CLI installs one) the exception is
printed as "Exception ignored" and swallowed, and `kill` or Ctrl-C did nothing. The server now takes its stop
signals on the loop (`serve_forever(stop_signals=...)`); here a signal is sent from inside such a callback.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
from typing import Any

import requests

from mock_server.serving import make_server
from tests.support.wire import Echo

STOP = signal.SIGUSR1  # pytest's own SIGINT handling stays out of it
GIVE_UP_SECONDS = 10.0


def test_a_stop_signal_arriving_inside_a_collector_callback_stops_the_server() -> None:
    def collect() -> None:  # on the loop after each answer, as the CLI collects (`heap.collect_if_due`)
        gc.collect(0)

    server = make_server("127.0.0.1", 0, Echo(), after_answer=collect)
    url = f"http://127.0.0.1:{server.server_port}/"
    sent = threading.Event()

    def signal_from_inside(phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and threading.current_thread() is threading.main_thread() and not sent.is_set():
            sent.set()
            os.kill(os.getpid(), STOP)  # the Python-level handler runs before this callback returns

    def keep_the_loop_busy() -> None:
        with requests.Session() as session:
            while not sent.is_set():
                try:
                    session.get(url, timeout=2)
                except requests.RequestException:
                    return

    previous = signal.getsignal(STOP)
    gave_up = threading.Event()

    def give_up() -> None:  # a server the signal missed must not hang the test run
        gave_up.set()
        server.shutdown()

    watchdog = threading.Timer(GIVE_UP_SECONDS, give_up)
    gc.callbacks.append(signal_from_inside)
    client = threading.Thread(target=keep_the_loop_busy, daemon=True)
    try:
        watchdog.start()
        client.start()
        server.serve_forever(stop_signals=(STOP,))
        assert sent.is_set()
        assert not gave_up.is_set(), "the signal was lost: the watchdog had to stop the server"
    finally:
        watchdog.cancel()
        if signal_from_inside in gc.callbacks:
            gc.callbacks.remove(signal_from_inside)
        signal.signal(STOP, previous)
        server.server_close()
        client.join(timeout=5)
