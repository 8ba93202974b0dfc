"""The stream under load: hundreds of clients on one process, and a client that stops reading."""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta

from mock_server.config import Config
from mock_server.spec.validation import SchemaValidator
from tests.support.stream import RawClient, StreamClient, running, wait_for

CLIENTS = 200


def test_two_hundred_clients_on_one_process_all_get_every_step() -> None:
    with running(Config(seed=7, tick_seconds=0.25)) as (url, app):
        hub = app.extensions["tradefence"].stream
        symbols = app.extensions["tradefence"].simulator.universe.symbols[:20]
        started = time.monotonic()
        clients = [StreamClient(url, app) for _ in range(CLIENTS)]
        for number, client in enumerate(clients):
            client.subscribe(symbols[number % len(symbols)])
        firsts = []
        for number, client in enumerate(clients):
            assert client.recv()["symbols"] == [symbols[number % len(symbols)]]
            firsts.append(client.recv()["timestamp"])
        assert hub.connection_count == CLIENTS
        latest = max(firsts)
        for client in clients:  # everybody sees a later step than the newest snapshot, within a couple of steps
            client.until(lambda m: m["type"] == "quote" and m["timestamp"] > latest, timeout=3)
        for client in clients:
            client.close()
        assert wait_for(lambda: hub.connection_count == 0), f"{hub.connection_count} connections left"
        assert time.monotonic() - started < 15


def test_a_client_that_stops_reading_is_dropped_oldest_first_and_never_delays_the_others() -> None:
    """The stalled client completes the handshake, subscribes to 200 symbols (400 messages a 0.1 s step) and
    never reads; its outbox stays at the configured bound while a second client keeps getting every step. The
    bound (1000) is over one step's burst, so only the stall can make it overflow."""
    capacity = 1000
    with running(Config(seed=7, tick_seconds=0.1, stream_queue_size=capacity)) as (url, app):
        services = app.extensions["tradefence"]
        hub, clock = services.stream, services.clock
        stalled = RawClient(url, receive_buffer=4096)
        stalled.send({"action": "subscribe", "symbols": list(services.simulator.universe.symbols[:200])})
        assert wait_for(lambda: hub.connection_count == 1)
        (stalled_connection,) = hub.connections()
        healthy = StreamClient(url, app)
        healthy.subscribe("AAPL")
        healthy.recv()

        steps: list[datetime] = []
        worst_lag, most_queued = 0.0, 0
        deadline = time.monotonic() + 10
        dropped_since: float | None = None
        while time.monotonic() < deadline:
            message = healthy.recv(timeout=2)  # the client insists on seq without gaps
            most_queued = max(most_queued, stalled_connection.queued)
            if message["type"] != "quote":
                continue
            stamp = datetime.fromisoformat(message["timestamp"])
            worst_lag = max(worst_lag, (clock.now() - stamp).total_seconds())  # time since its step began
            steps.append(stamp)
            if dropped_since is None and stalled_connection.dropped > 0:
                dropped_since = time.monotonic()
            if dropped_since is not None and time.monotonic() - dropped_since > 1.0:
                break
        assert dropped_since is not None, "the stalled client's outbox never overflowed"
        assert most_queued <= capacity
        assert all(b - a == timedelta(seconds=0.1) for a, b in itertools.pairwise(steps)), \
            "the healthy client missed a step"
        # A sender blocked on the stalled socket would stop the healthy one outright (its recv times out above);
        # the bound is loose because a busy 2-core machine delays every thread (0.64 s seen), not just this one.
        assert worst_lag < 2.0, f"the healthy client fell {worst_lag:.2f} s behind"

        # When the stalled client reads again, the gap in seq tells it how much it missed.
        validator = SchemaValidator(app.extensions["tradefence.spec"],
                                    app.extensions["tradefence.spec"].schema_ref("StreamServerMessage"))
        previous, gap = 0, 0
        for message in stalled.messages():
            assert not validator.errors(message), message
            assert message["seq"] > previous
            gap = max(gap, message["seq"] - previous - 1)
            previous = message["seq"]
            if gap:
                break
        assert gap > 0

        # Shutdown does not wait on it: once it overflows again (its sender is stuck writing), closing the hub
        # aborts that sender after the grace period, and the healthy client gets its close frame.
        dropped = stalled_connection.dropped
        assert wait_for(lambda: stalled_connection.dropped > dropped)
        started = time.monotonic()
        hub.close(grace=0.2)
        assert time.monotonic() - started < 1.5 and hub.connection_count == 0
        assert healthy.expect_close()[0] == 1001
