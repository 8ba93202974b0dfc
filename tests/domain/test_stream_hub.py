"""The market-data hub without sockets: subscriptions, ticks that follow the clock, heartbeats, auth, slow clients."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.market.simulator import MarketSimulator, Quote, Trade
from mock_server.domain.market.universe import Universe
from mock_server.domain.oauth.tokens import Principal
from mock_server.domain.stream import (
    CLOSE_GOING_AWAY,
    CLOSE_UNAUTHORIZED,
    Authenticated,
    Connection,
    Heartbeat,
    Outgoing,
    StreamFault,
    StreamHub,
    StreamSettings,
    Subscribed,
)

T0 = datetime(2026, 11, 25, 15, 0, 0, 250_000, tzinfo=UTC)


class Wall:
    """A hand-moved monotonic clock for heartbeats and timeouts."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def verify(token: str) -> Principal:
    if token != "good":
        raise ApiError(ErrorCode.INVALID_CREDENTIALS, "The access token is invalid")
    return Principal(subject="trader", client_id="sandbox-client", scopes=frozenset(), grant_id="g", token_id="t")


@pytest.fixture(scope="module")
def simulator() -> MarketSimulator:
    return MarketSimulator(Universe.load_default(), seed=7, step=timedelta(seconds=1))


@pytest.fixture
def clock() -> Clock:
    return Clock(start=T0, frozen=True)


@pytest.fixture
def wall() -> Wall:
    return Wall()


def make_hub(simulator: MarketSimulator, clock: Clock, wall: Wall, **settings: object) -> StreamHub:
    return StreamHub(simulator, clock, verify, StreamSettings(**settings), monotonic=wall, publisher=False)


def connect(hub: StreamHub, token: str | None = None) -> Connection:
    return hub.connect(lambda: None, lambda: None, token=token)


def taken(connection: Connection) -> list[Outgoing]:
    return connection.take()[0]


def messages(connection: Connection) -> list[object]:
    return [item.message for item in taken(connection)]


def test_subscribe_acknowledges_the_whole_list_and_sends_the_current_step_at_once(
        simulator: MarketSimulator, clock: Clock, wall: Wall) -> None:
    hub = make_hub(simulator, clock, wall)
    client = connect(hub)
    hub.subscribe(client, ["AAPL", "MSFT", "AAPL"])
    hub.subscribe(client, ["GOOGL"])
    got = messages(client)
    assert got[0] == Subscribed(("AAPL", "MSFT"), T0)
    assert got[1:5] == [simulator.quote("AAPL", T0), simulator.trade("AAPL", T0),
                        simulator.quote("MSFT", T0), simulator.trade("MSFT", T0)]
    assert got[5] == Subscribed(("AAPL", "MSFT", "GOOGL"), T0)
    assert got[6:] == [simulator.quote("GOOGL", T0), simulator.trade("GOOGL", T0)]


def test_unknown_symbols_get_1004_while_the_known_ones_subscribe(simulator: MarketSimulator, clock: Clock,
                                                                  wall: Wall) -> None:
    hub = make_hub(simulator, clock, wall)
    client = connect(hub)
    hub.subscribe(client, ["ZZZZ", "AAPL", "QQQQQ"])
    ack, fault, *ticks = messages(client)
    assert ack == Subscribed(("AAPL",), T0)
    assert isinstance(fault, StreamFault) and fault.code is ErrorCode.INVALID_SYMBOL
    assert fault.symbols == ("ZZZZ", "QQQQQ") and "ZZZZ" in fault.message
    assert [type(tick) for tick in ticks] == [Quote, Trade]


def test_unsubscribe_acknowledges_what_is_left_and_stops_the_ticks(simulator: MarketSimulator, clock: Clock,
                                                                   wall: Wall) -> None:
    hub = make_hub(simulator, clock, wall)
    client = connect(hub)
    hub.subscribe(client, ["AAPL", "MSFT"])
    taken(client)
    hub.unsubscribe(client, ["AAPL", "NOT_SUBSCRIBED"])
    assert messages(client) == [Subscribed(("MSFT",), T0)]
    clock.advance(timedelta(seconds=1))
    assert [m.symbol for m in messages(client)] == ["MSFT", "MSFT"]  # type: ignore[attr-defined]


def test_each_step_is_published_once_per_symbol_and_only_when_the_clock_moves(
        simulator: MarketSimulator, clock: Clock, wall: Wall) -> None:
    hub = make_hub(simulator, clock, wall)
    a, b = connect(hub), connect(hub)
    hub.subscribe(a, ["AAPL"])
    hub.subscribe(b, ["AAPL", "MSFT"])
    taken(a), taken(b)
    hub.tick()
    hub.tick()
    assert messages(a) == [] and messages(b) == []  # frozen clock: no new step, nothing new to say

    clock.advance(timedelta(seconds=0.5))  # 15:00:00.75, still the same step
    assert messages(a) == []
    clock.advance(timedelta(seconds=0.5))  # 15:00:01.25: the next step, published by the move itself
    step = datetime(2026, 11, 25, 15, 0, 1, tzinfo=UTC)
    assert messages(a) == [simulator.quote("AAPL", step), simulator.trade("AAPL", step)]
    assert messages(b) == [simulator.quote("AAPL", step), simulator.trade("AAPL", step),
                           simulator.quote("MSFT", step), simulator.trade("MSFT", step)]
    hub.tick()
    assert messages(a) == []  # already published


def test_a_jump_publishes_the_step_it_lands_in_even_backwards(simulator: MarketSimulator, clock: Clock,
                                                              wall: Wall) -> None:
    hub = make_hub(simulator, clock, wall)
    client = connect(hub)
    hub.subscribe(client, ["AAPL"])
    taken(client)
    clock.advance(timedelta(hours=1))
    clock.set(T0 - timedelta(days=1))
    quotes = [m for m in messages(client) if isinstance(m, Quote)]
    assert [q.timestamp for q in quotes] == [datetime(2026, 11, 25, 16, 0, tzinfo=UTC),
                                             datetime(2026, 11, 24, 15, 0, tzinfo=UTC)]


def test_steps_the_publisher_overslept_are_published_in_order(simulator: MarketSimulator, wall: Wall) -> None:
    real = [1_000.0]
    clock = Clock(source=lambda: real[0], start=T0)  # running, on a time source the test moves
    hub = make_hub(simulator, clock, wall)
    client = connect(hub)
    hub.subscribe(client, ["AAPL"])
    taken(client)
    real[0] += 3.0  # three boundaries pass while the publisher sleeps (no clock listener fires: time just flows)
    hub.tick()
    stamps = [m.timestamp for m in messages(client) if isinstance(m, Quote)]
    assert stamps == [datetime(2026, 11, 25, 15, 0, s, tzinfo=UTC) for s in (1, 2, 3)]


def test_a_running_clock_waits_until_the_next_step(simulator: MarketSimulator, wall: Wall) -> None:
    clock = Clock(start=T0)  # running: 0.75 s of this step left
    hub = make_hub(simulator, clock, wall)
    assert 0.7 < hub.tick() <= 0.752


def test_heartbeats_run_on_wall_time_even_with_the_market_clock_frozen(simulator: MarketSimulator, clock: Clock,
                                                                       wall: Wall) -> None:
    hub = make_hub(simulator, clock, wall, heartbeat_seconds=15.0)
    idle = connect(hub)
    assert hub.tick() == pytest.approx(15.0)
    wall.now += 14.9
    hub.tick()
    assert messages(idle) == []
    wall.now += 0.1
    assert hub.tick() == pytest.approx(15.0)
    assert messages(idle) == [Heartbeat(T0)]


def test_seq_counts_every_message_and_a_full_outbox_drops_the_oldest(simulator: MarketSimulator, clock: Clock,
                                                                     wall: Wall) -> None:
    hub = make_hub(simulator, clock, wall, queue_size=5)
    slow = connect(hub)
    hub.subscribe(slow, ["AAPL", "MSFT"])  # ack + 4 ticks: exactly full
    assert slow.queued == 5 and slow.dropped == 0
    for _ in range(3):
        clock.advance(timedelta(seconds=1))  # 4 more each
    assert slow.queued == 5 and slow.dropped == 12 and slow.sequence == 17
    got = taken(slow)
    assert [item.seq for item in got] == [13, 14, 15, 16, 17]  # the newest survive; 1..12 show as a gap
    assert got[-1].message == simulator.trade("MSFT", datetime(2026, 11, 25, 15, 0, 3, tzinfo=UTC))


def test_a_step_larger_than_the_outbox_keeps_its_newest_ticks(simulator: MarketSimulator, clock: Clock,
                                                               wall: Wall) -> None:
    hub = make_hub(simulator, clock, wall, queue_size=3)
    client = connect(hub)
    hub.subscribe(client, ["AAPL", "MSFT"])  # ack + 4 ticks into 3 places: 2 dropped
    assert client.dropped == 2 and [item.seq for item in taken(client)] == [3, 4, 5]
    clock.advance(timedelta(seconds=1))  # one step: 4 ticks queued together into 3 places
    assert client.dropped == 3 and client.sequence == 9
    got = taken(client)
    assert [item.seq for item in got] == [7, 8, 9]
    assert [item.message for item in got] == [
        simulator.trade("AAPL", datetime(2026, 11, 25, 15, 0, 1, tzinfo=UTC)),
        simulator.quote("MSFT", datetime(2026, 11, 25, 15, 0, 1, tzinfo=UTC)),
        simulator.trade("MSFT", datetime(2026, 11, 25, 15, 0, 1, tzinfo=UTC))]


def test_a_slow_client_costs_the_others_nothing(simulator: MarketSimulator, clock: Clock, wall: Wall) -> None:
    hub = make_hub(simulator, clock, wall, queue_size=3)
    slow, fast = connect(hub), connect(hub)
    hub.subscribe(slow, ["AAPL"])
    hub.subscribe(fast, ["AAPL"])
    seen = [item.seq for item in taken(fast)]
    for _ in range(50):
        clock.advance(timedelta(seconds=1))
        seen += [item.seq for item in taken(fast)]
    assert seen == list(range(1, 104)) and slow.queued == 3


def test_handshake_token_authenticates_and_a_bad_one_is_refused_with_4401(simulator: MarketSimulator,
                                                                          clock: Clock, wall: Wall) -> None:
    hub = make_hub(simulator, clock, wall)
    good = connect(hub, token="good")
    assert messages(good) == [Authenticated("trader", T0)]
    bad = connect(hub, token="forged")
    (fault,), closing = bad.take()
    assert isinstance(fault, Outgoing) and fault.message.code is ErrorCode.INVALID_CREDENTIALS  # type: ignore[union-attr]
    assert closing is not None and closing.code == CLOSE_UNAUTHORIZED
    hub.subscribe(bad, ["AAPL"])
    assert bad.take()[0] == []  # closing: nothing more is queued


def test_require_auth_refuses_a_subscribe_before_auth_but_accepts_an_auth_message(
        simulator: MarketSimulator, clock: Clock, wall: Wall) -> None:
    hub = make_hub(simulator, clock, wall, require_auth=True)
    patient = connect(hub)
    hub.authenticate(patient, "good")
    hub.subscribe(patient, ["AAPL"])
    assert [type(m) for m in messages(patient)] == [Authenticated, Subscribed, Quote, Trade]

    eager = connect(hub)
    hub.subscribe(eager, ["AAPL"])
    (fault,), closing = eager.take()
    assert fault.message.code is ErrorCode.INVALID_CREDENTIALS  # type: ignore[union-attr]
    assert "Authentication required" in fault.message.message  # type: ignore[union-attr]
    assert closing is not None and closing.code == CLOSE_UNAUTHORIZED


def test_require_auth_gives_up_on_a_silent_client_after_the_timeout(simulator: MarketSimulator, clock: Clock,
                                                                    wall: Wall) -> None:
    hub = make_hub(simulator, clock, wall, require_auth=True, auth_timeout_seconds=10.0, heartbeat_seconds=60.0)
    silent = connect(hub)
    assert hub.tick() == pytest.approx(10.0)
    wall.now += 10.0
    hub.tick()
    _, closing = silent.take()
    assert closing is not None and closing.code == CLOSE_UNAUTHORIZED


def test_close_says_going_away_and_aborts_senders_that_do_not_leave(simulator: MarketSimulator,
                                                                   clock: Clock) -> None:
    hub = StreamHub(simulator, clock, verify, StreamSettings())
    aborted = threading.Event()
    leaving = hub.connect(lambda: None, lambda: None)
    hub.connect(lambda: None, aborted.set)  # a sender that is stuck: it never takes, never leaves

    def sender() -> None:  # behaves like a sender that flushes and leaves when asked to close
        while leaving.take()[1] is None:
            threading.Event().wait(0.01)
        hub.disconnect(leaving)

    thread = threading.Thread(target=sender)
    thread.start()
    hub.close(grace=0.2)
    thread.join()
    assert leaving.closing is not None and leaving.closing.code == CLOSE_GOING_AWAY
    assert aborted.is_set() and hub.connection_count == 1  # nobody disconnected the fake stuck sender
    late = hub.connect(lambda: None, lambda: None)
    assert late.closing is not None and late.closing.code == CLOSE_GOING_AWAY


def test_settings_refuse_values_that_cannot_work() -> None:
    with pytest.raises(ValueError, match="heartbeat_seconds"):
        StreamSettings(heartbeat_seconds=0)
    with pytest.raises(ValueError, match="stream_queue_size"):
        StreamSettings(queue_size=0)


def test_prices_are_the_simulators(simulator: MarketSimulator, clock: Clock, wall: Wall) -> None:
    hub = make_hub(simulator, clock, wall)
    client = connect(hub)
    hub.subscribe(client, ["AAPL"])
    _, quote, trade = messages(client)
    assert isinstance(quote, Quote) and isinstance(trade, Trade)
    assert quote.bid <= trade.price <= quote.ask and trade.price == simulator.price("AAPL", T0) > Decimal(0)
