"""The alert watcher with made-up positions and prices: thresholds, once-until-cleared, clock jumps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mock_server.domain.clock import Clock
from mock_server.domain.ids import IdGenerator
from mock_server.domain.trading.models import PositionView
from mock_server.domain.webhooks.alerts import Alert, AlertKind, AlertSettings, AlertWatcher

OPENED = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def position(loss_percent: str, opened_at: datetime = OPENED) -> PositionView:
    percent = Decimal(loss_percent)
    return PositionView(symbol="TSLA", quantity=10, available_quantity=10, average_entry_price=Decimal(100),
                        cost_basis=Decimal(1000), market_price=Decimal(100) + percent,
                        market_value=Decimal(1000) + percent * 10, unrealized_pl=percent * 10,
                        unrealized_pl_percent=percent, opened_at=opened_at, updated_at=opened_at)


class World:
    """Positions and prices the test sets; the watcher reads them through the same callables services wire."""

    def __init__(self) -> None:
        self.clock = Clock(start=OPENED, frozen=True)
        self.positions: list[tuple[str, PositionView]] = []
        self.prices = {OPENED: Decimal(100)}
        self.price_now = Decimal(100)
        self.fired: list[tuple[str, Alert]] = []
        self.watcher = AlertWatcher(lambda: list(self.positions), self.price, self.clock,
                                    IdGenerator(1, self.clock, stream="webhooks"),
                                    AlertSettings(Decimal(5), Decimal(3), 60.0),
                                    lambda account, alert, at: self.fired.append((account, alert)))

    def price(self, symbol: str, at: datetime) -> Decimal:
        return self.prices.get(at, self.price_now)

    def kinds(self) -> list[AlertKind]:
        return [alert.kind for _, alert in self.fired]


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.watcher.stop()


def test_a_loss_past_the_threshold_fires_once_until_it_clears(world: World) -> None:
    world.positions = [("acc_a", position("-4.99"))]
    assert world.watcher.check() == []
    world.positions = [("acc_a", position("-5.00"))]
    [alert] = world.watcher.check()
    assert (alert.kind, alert.symbol, alert.threshold_percent, alert.observed_percent) == (
        AlertKind.POSITION_LOSS, "TSLA", Decimal(5), Decimal("-5.00"))
    assert alert.message == "TSLA position is down 5.0% from its cost basis"
    assert alert.id.startswith("alt_")
    world.positions = [("acc_a", position("-7.20"))]
    assert world.watcher.check() == []  # still past it: no repeat
    world.positions = [("acc_a", position("-2.00"))]
    assert world.watcher.check() == []  # cleared
    world.positions = [("acc_a", position("-6.00"))]
    assert [a.kind for a in world.watcher.check()] == [AlertKind.POSITION_LOSS]  # fires again
    assert [account for account, _ in world.fired] == ["acc_a", "acc_a"]


def test_a_price_move_either_way_fires_and_a_new_position_is_watched_afresh(world: World) -> None:
    world.clock.advance(timedelta(hours=2))
    world.positions = [("acc_a", position("1.00"))]
    world.price_now = Decimal("103.10")
    [alert] = world.watcher.check()
    assert (alert.kind, alert.observed_percent) == (AlertKind.PRICE_MOVE, Decimal("3.10"))
    assert alert.message == "TSLA moved +3.1% since the position opened"
    world.price_now = Decimal("96.00")
    assert world.watcher.check() == []  # still moved more than 3%, the other way: same condition
    reopened = OPENED + timedelta(hours=1)
    world.prices[reopened] = Decimal("99.00")
    world.positions = [("acc_a", position("1.00", opened_at=reopened))]
    [again] = world.watcher.check()  # a new position (another opened_at): 96 against 99 is a new -3.03% move
    assert again.observed_percent == Decimal("-3.03")
    assert world.kinds() == [AlertKind.PRICE_MOVE, AlertKind.PRICE_MOVE]


def test_a_clock_jump_checks_at_once(world: World) -> None:
    world.positions = [("acc_a", position("-9.00"))]
    world.clock.advance(timedelta(minutes=5))
    assert world.kinds() == [AlertKind.POSITION_LOSS]


def test_a_stopped_watcher_fires_nothing(world: World) -> None:
    world.watcher.stop()
    world.positions = [("acc_a", position("-9.00"))]
    world.clock.advance(timedelta(minutes=5))
    assert world.watcher.check() == [] and world.fired == []


def test_thresholds_must_be_positive() -> None:
    with pytest.raises(ValueError):
        AlertSettings(Decimal(0), Decimal(3), 1.0)
