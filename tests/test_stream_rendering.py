"""Ticks rendered once for all their subscribers (`web/stream.py` TickTexts), each with its own `seq`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mock_server.domain.market.simulator import MarketSimulator, Quote
from mock_server.domain.market.universe import Universe
from mock_server.domain.stream.connection import Outgoing
from mock_server.web import stream

NOW = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)


@pytest.fixture
def quote() -> Quote:
    return MarketSimulator(Universe.load_default(), 7, step=timedelta(seconds=1)).quote("AAPL", NOW)


def test_one_tick_is_rendered_once_and_each_subscriber_gets_its_own_seq(quote: Quote,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    rendered: list[Quote] = []
    original = stream._tick_text
    monkeypatch.setattr(stream, "_tick_text", lambda message: rendered.append(message) or original(message))
    texts = stream.TickTexts()
    bodies = [json.loads(stream.render(Outgoing(seq, quote), texts)) for seq in (1, 2, 3)]
    assert rendered == [quote]
    assert [body["seq"] for body in bodies] == [1, 2, 3]
    assert {json.dumps({k: v for k, v in body.items() if k != "seq"}) for body in bodies} == {
        json.dumps({"type": "quote", "timestamp": "2026-12-01T15:30:00.000Z", "symbol": "AAPL",
                    "bid": float(quote.bid), "ask": float(quote.ask), "bid_size": quote.bid_size,
                    "ask_size": quote.ask_size})}


def test_an_equal_tick_that_is_another_object_is_rendered_as_itself(quote: Quote) -> None:
    texts = stream.TickTexts()
    moved = replace(quote, bid=quote.bid - Decimal("0.01"))
    assert json.loads(stream.render(Outgoing(1, quote), texts))["bid"] == float(quote.bid)
    assert json.loads(stream.render(Outgoing(1, moved), texts))["bid"] == float(moved.bid)


def test_past_its_size_everything_is_rendered_again_and_still_right(quote: Quote) -> None:
    texts = stream.TickTexts(size=2)
    ticks = [replace(quote, bid_size=size) for size in range(5)]
    for _ in range(2):
        assert [json.loads(stream.render(Outgoing(9, tick), texts))["bid_size"] for tick in ticks] == list(range(5))
