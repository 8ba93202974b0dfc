"""The price model must be a pure function of (seed, symbol, step): tests replay, rewind and jump the clock."""

from __future__ import annotations

import itertools
import math
import os
import random
import statistics
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mock_server.domain.market.simulator import MarketSimulator, Quote, Trade
from mock_server.domain.market.universe import Instrument, Universe

FIXTURE = Path(__file__).parent / "data" / "tickers.csv"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
YEAR = timedelta(days=365.25)


@pytest.fixture(scope="module")
def universe() -> Universe:
    return Universe.from_csv(FIXTURE.read_text(encoding="utf-8"))


def instants(count: int, seed: int = 7) -> list[datetime]:
    """Times spread over several years on both sides of the epoch, with sub-second offsets."""
    rng = random.Random(seed)
    return [EPOCH + timedelta(seconds=rng.uniform(-3 * 365 * 86_400, 5 * 365 * 86_400)) for _ in range(count)]


def test_two_instances_agree_whatever_the_query_order(universe: Universe) -> None:
    times = instants(300)
    forward = MarketSimulator(universe, 42)
    expected = {(s, t): forward.price(s, t) for t in sorted(times) for s in universe.symbols}
    backward = MarketSimulator(universe, 42)
    for t in sorted(times, reverse=True):
        for s in reversed(universe.symbols):
            assert backward.price(s, t) == expected[(s, t)]
    jumping = MarketSimulator(universe, 42)
    keys = list(expected)
    random.Random(3).shuffle(keys)
    for s, t in keys:
        assert jumping.price(s, t) == expected[(s, t)]
    # Asking again after all that traffic (and from the instance that computed it first) changes nothing.
    assert all(forward.price(s, t) == price for (s, t), price in expected.items())


def test_successive_steps_agree_with_cold_lookups(universe: Universe) -> None:
    warm = MarketSimulator(universe, 9)
    series = [warm.price("AAPL", T0 + timedelta(seconds=i)) for i in range(500)]
    for i in (0, 1, 2, 255, 256, 499):
        assert MarketSimulator(universe, 9).price("AAPL", T0 + timedelta(seconds=i)) == series[i]


def test_quotes_agree_with_cold_lookups_whatever_was_asked_before(universe: Universe) -> None:
    """A symbol's last quote is kept for its step: asking within the step, across steps and back must give
    exactly what a fresh simulator computes."""
    warm = MarketSimulator(universe, 13)
    moments = [T0 + timedelta(seconds=offset) for offset in (0, 0.2, 0.9, 1, 1.5, 0.1, 7, 7.01, 2, 0, -3)]
    for moment in moments:
        for symbol in ("AAPL", "KO"):
            assert warm.quote(symbol, moment) == MarketSimulator(universe, 13).quote(symbol, moment)
    assert warm.quote("AAPL", T0) is warm.quote("AAPL", T0 + timedelta(seconds=0.5))  # one step, one quote
    with pytest.raises(KeyError):
        warm.quote("NOPE", T0)


def test_tiny_cache_gives_identical_answers(universe: Universe) -> None:
    times = instants(200, seed=11)
    roomy = MarketSimulator(universe, 5)
    cramped = MarketSimulator(universe, 5, cache_size=16)
    for t in times:
        assert cramped.price("TSLA", t) == roomy.price("TSLA", t)
        assert cramped.quote("KO", t) == roomy.quote("KO", t)


def test_same_answer_in_a_fresh_process(universe: Universe) -> None:
    sim = MarketSimulator(universe, 1234)
    at = datetime(2026, 6, 15, 14, 30, 5, tzinfo=UTC)
    script = (
        "import sys; from datetime import datetime, UTC; from pathlib import Path;"
        "from mock_server.domain.market.universe import Universe;"
        "from mock_server.domain.market.simulator import MarketSimulator;"
        "u = Universe.from_csv(Path(sys.argv[1]).read_text());"
        "s = MarketSimulator(u, 1234); at = datetime(2026, 6, 15, 14, 30, 5, tzinfo=UTC);"
        "print(s.price('MSFT', at), s.quote('MSFT', at).bid, s.trade('MSFT', at).size)"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONHASHSEED": "987", "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", script, str(FIXTURE)], capture_output=True, text=True, check=True,
                         env=env, cwd=root).stdout.split()
    assert out == [str(sim.price("MSFT", at)), str(sim.quote("MSFT", at).bid), str(sim.trade("MSFT", at).size)]


def test_different_seeds_differ(universe: Universe) -> None:
    a, b = MarketSimulator(universe, 1), MarketSimulator(universe, 2)
    times = instants(50)
    differing = sum(a.price("AAPL", t) != b.price("AAPL", t) for t in times)
    assert differing >= 45


def test_symbols_have_independent_paths() -> None:
    twins = Universe([Instrument(s, s, "X", "S", Decimal(100), 0.3) for s in ("AAA", "BBB")])
    sim = MarketSimulator(twins, 1)
    times = instants(50)
    assert sum(sim.price("AAA", t) != sim.price("BBB", t) for t in times) >= 45


def test_price_starts_at_base_price_at_epoch(universe: Universe) -> None:
    sim = MarketSimulator(universe, 77)
    for instrument in universe:
        assert sim.price(instrument.symbol, EPOCH) == instrument.base_price
        assert sim.price(instrument.symbol, EPOCH + timedelta(milliseconds=999)) == instrument.base_price


def test_price_constant_within_a_step_and_moving_across_steps(universe: Universe) -> None:
    sim = MarketSimulator(universe, 3, step=timedelta(minutes=1))
    start = sim.step_start(sim.step_index(T0))
    prices = []
    for i in range(60):
        step_start = start + timedelta(minutes=i)
        price = sim.price("TSLA", step_start)
        for offset in (timedelta(microseconds=1), timedelta(seconds=30), timedelta(seconds=59, microseconds=999_999)):
            assert sim.price("TSLA", step_start + offset) == price
        prices.append(price)
    changes = sum(a != b for a, b in itertools.pairwise(prices))
    assert changes >= 50


def test_step_index_and_start(universe: Universe) -> None:
    sim = MarketSimulator(universe, 1, step=timedelta(milliseconds=250))
    assert sim.step == timedelta(milliseconds=250)
    assert sim.seed == 1
    assert sim.step_index(EPOCH) == 0
    assert sim.step_index(EPOCH + timedelta(milliseconds=249)) == 0
    assert sim.step_index(EPOCH + timedelta(seconds=1)) == 4
    assert sim.step_index(EPOCH - timedelta(microseconds=1)) == -1
    assert sim.step_start(-1) == EPOCH - timedelta(milliseconds=250)
    for t in instants(20):
        index = sim.step_index(t)
        assert sim.step_start(index) <= t < sim.step_start(index + 1)


def test_other_timezones_are_the_same_instant(universe: Universe) -> None:
    sim = MarketSimulator(universe, 1)
    local = T0.astimezone(ZoneInfo("America/New_York"))
    assert sim.price("JPM", local) == sim.price("JPM", T0)


def test_quote_brackets_price_with_bounded_spread(universe: Universe) -> None:
    sim = MarketSimulator(universe, 8)
    for t in instants(300, seed=5):
        for symbol in universe.symbols:
            quote = sim.quote(symbol, t)
            price = sim.price(symbol, t)
            assert isinstance(quote, Quote) and quote.symbol == symbol
            assert Decimal("0.01") <= quote.bid <= price <= quote.ask
            assert quote.bid < quote.ask
            spread = quote.ask - quote.bid
            assert spread >= Decimal("0.01")
            assert spread <= price * Decimal("0.0006") + Decimal("0.02")
            assert quote.bid == quote.bid.quantize(Decimal("0.01")) and quote.ask == quote.ask.quantize(Decimal("0.01"))
            for size in (quote.bid_size, quote.ask_size):
                assert 100 <= size <= 5000 and size % 100 == 0
            assert quote.timestamp == sim.step_start(sim.step_index(t))


def test_spreads_and_sizes_vary(universe: Universe) -> None:
    sim = MarketSimulator(universe, 8)
    quotes = [sim.quote("MSFT", T0 + timedelta(seconds=i)) for i in range(200)]
    assert len({q.bid_size for q in quotes}) > 20
    assert len({q.ask - q.bid for q in quotes}) > 3


def test_trade_matches_price(universe: Universe) -> None:
    sim = MarketSimulator(universe, 8)
    sizes = set()
    for t in instants(200, seed=9):
        trade = sim.trade("XOM", t)
        assert isinstance(trade, Trade)
        assert trade.price == sim.price("XOM", t)
        assert 1 <= trade.size <= 1000
        assert trade.timestamp == sim.step_start(sim.step_index(t))
        sizes.add(trade.size)
    assert len(sizes) > 100


def test_prices_stay_positive_and_plausible_after_a_year(universe: Universe) -> None:
    for seed in range(20):
        sim = MarketSimulator(universe, seed)
        for instrument in universe:
            base = float(instrument.base_price)
            for t in (EPOCH + YEAR, EPOCH - YEAR):
                price = float(sim.price(instrument.symbol, t))
                assert price > 0
                assert abs(math.log(price / base)) < 6 * instrument.volatility


def test_far_future_and_fine_steps_work(universe: Universe) -> None:
    sim = MarketSimulator(universe, 4, step=timedelta(milliseconds=1))  # 2**32 ms is ~50 days: crosses blocks
    far = datetime(2400, 5, 6, 7, 8, 9, tzinfo=UTC)
    first = sim.price("AAPL", far)
    assert first > 0
    assert MarketSimulator(universe, 4, step=timedelta(milliseconds=1)).price("AAPL", far) == first
    assert sim.price("AAPL", datetime(1900, 1, 1, tzinfo=UTC)) > 0


def test_penny_stock_never_quotes_below_a_cent() -> None:
    penny = Universe([Instrument("PNY", "Penny", "X", "S", Decimal("0.02"), 3.0)])
    sim = MarketSimulator(penny, 1)
    for t in instants(200):
        quote = sim.quote("PNY", t)
        assert sim.price("PNY", t) >= Decimal("0.01")
        assert quote.bid >= Decimal("0.01") and quote.ask > quote.bid


def test_zero_volatility_is_flat() -> None:
    flat = Universe([Instrument("FLAT", "Flat", "X", "S", Decimal("50.00"), 0.0)])
    sim = MarketSimulator(flat, 1)
    assert {sim.price("FLAT", t) for t in instants(50)} == {Decimal("50.00")}
    assert sim.returns("FLAT", T0, window=timedelta(days=1), samples=10) == [0.0] * 10


@pytest.mark.parametrize(
    ("window", "samples"),
    [(timedelta(days=365.25), 2000), (timedelta(seconds=3000), 3000), (timedelta(days=3 * 365.25), 1500)],
)
def test_realized_volatility_matches_configuration(universe: Universe, window: timedelta, samples: int) -> None:
    sim = MarketSimulator(universe, 2024)
    per_year = YEAR / (window / samples)
    for instrument in universe:
        returns = sim.returns(instrument.symbol, T0, window=window, samples=samples)
        assert len(returns) == samples
        realized = statistics.pstdev(returns) * math.sqrt(per_year)
        assert realized == pytest.approx(instrument.volatility, rel=0.3)


def test_returns_agree_with_prices(universe: Universe) -> None:
    sim = MarketSimulator(universe, 6)
    returns = sim.returns("AAPL", T0, window=timedelta(days=30), samples=30)
    total = math.log(float(sim.price("AAPL", T0)) / float(sim.price("AAPL", T0 - timedelta(days=30))))
    assert sum(returns) == pytest.approx(total, abs=0.001)  # prices are cent-rounded, returns are not


def test_bad_arguments(universe: Universe) -> None:
    sim = MarketSimulator(universe, 1)
    with pytest.raises(KeyError):
        sim.price("NOPE", T0)
    with pytest.raises(KeyError):
        sim.quote("aapl", T0)
    with pytest.raises(KeyError):
        sim.trade("NOPE", T0)
    with pytest.raises(KeyError):
        sim.returns("NOPE", T0, window=timedelta(days=1), samples=2)
    with pytest.raises(ValueError):
        sim.price("AAPL", datetime(2026, 1, 1))  # naive
    with pytest.raises(ValueError):
        sim.returns("AAPL", T0, window=timedelta(days=1), samples=0)
    with pytest.raises(ValueError):
        MarketSimulator(universe, 1, step=timedelta(0))
    with pytest.raises(ValueError):
        MarketSimulator(universe, 1, epoch=datetime(2026, 1, 1))


def test_concurrent_queries_match_serial(universe: Universe) -> None:
    times = instants(100, seed=21)
    expected = {(s, t): MarketSimulator(universe, 99).quote(s, t) for s in ("AAPL", "TSLA") for t in times[:20]}
    shared = MarketSimulator(universe, 99, cache_size=64)
    failures: list[str] = []

    def worker(offset: int) -> None:
        keys = list(expected)
        random.Random(offset).shuffle(keys)
        for key in keys:
            if shared.quote(*key) != expected[key]:
                failures.append(f"{key}")
            shared.price("KO", times[offset])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
