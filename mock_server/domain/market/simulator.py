"""Seeded, stateless-looking price streams: the price at a time is a pure function of (seed, symbol, step).

Each symbol's log-price follows a driftless Brownian motion (geometric Brownian motion for the price) in
time quantized to ``step``. The path is built as a dyadic Brownian bridge over step indices ``0 .. 2**64``:
the endpoint ``W(2**64)`` is drawn first and every midpoint is drawn conditionally on its two endpoints, each
normal coming from a BLAKE2b hash of (seed, symbol, side, node index). Any step can therefore be evaluated
directly, in any order, in any process, after any clock jump, and always gives the same value; caching the
bridge nodes only makes it faster, never different. Steps before ``epoch`` use an independent mirrored bridge
(two-sided Brownian motion), so rewinding the clock below the epoch also works.

Time is calendar time: the market drifts around the clock, weekends included, and ``volatility`` is
annualized over 365.25 days, so a year of samples from ``returns()`` shows the configured volatility.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mock_server.domain.market.universe import Instrument, Universe

_LEVELS = 64
_TOP = 1 << _LEVELS  # last node of the bridge; 2**64 steps outlast datetime's range even at 1 µs steps
_BLOCK_BITS = 32  # evaluation walks down from the enclosing 2**32 block, whose ends are cached nodes
_BLOCK = 1 << _BLOCK_BITS
_SECONDS_PER_YEAR = 365.25 * 86_400
_CENT = Decimal("0.01")
_MIN_PRICE = 0.01
_UNIT = 2.0**-53
_TWO_PI = 2.0 * math.pi
# Standard deviation of a midpoint given its endpoints, indexed by log2 of the interval length: sqrt(len / 4).
_MID_STD = tuple(math.sqrt((1 << j) / 4.0) for j in range(_LEVELS + 1))
_DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_DEFAULT_CACHE = 100_000  # per generation; ~15 MB when full, ~100 bridge nodes per warm symbol


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book for one step; ``timestamp`` is the start of that step."""

    symbol: str
    bid: Decimal
    ask: Decimal
    bid_size: int
    ask_size: int
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class Trade:
    """The last trade printed in one step; ``price`` equals ``MarketSimulator.price`` for that step."""

    symbol: str
    price: Decimal
    size: int
    timestamp: datetime


class _Stream:
    """Hash prefix and top endpoint for one (symbol, side of the epoch): everything that side's bridge derives from."""

    __slots__ = ("hasher", "key", "top")

    def __init__(self, key: int, hasher: hashlib.blake2b) -> None:
        self.key = key
        self.hasher = hasher
        self.top = math.sqrt(float(_TOP)) * _normal(hasher, _TOP)


class MarketSimulator:
    """Deterministic quotes, trades and prices for every symbol of a universe.

    Instances are thread-safe; the only mutable state is a bounded cache of bridge nodes, so two instances with
    the same universe, seed, step and epoch give identical answers whatever was asked before. Changing the
    seed means building a new simulator.
    """

    def __init__(self, universe: Universe, seed: int, *, step: timedelta = timedelta(seconds=1),
                 epoch: datetime = _DEFAULT_EPOCH, cache_size: int = _DEFAULT_CACHE) -> None:
        if step <= timedelta(0):
            raise ValueError("step must be positive")
        if epoch.tzinfo is None:
            raise ValueError("epoch must be timezone-aware")
        if cache_size < 1:
            raise ValueError("cache_size must be positive")
        self._universe = universe
        self._seed = seed
        self._step = step
        self._epoch = epoch.astimezone(UTC)
        self._sqrt_step_years = math.sqrt(step.total_seconds() / _SECONDS_PER_YEAR)
        self._lock = threading.Lock()
        self._streams: dict[tuple[str, bool], _Stream] = {}
        self._micro: dict[str, hashlib.blake2b] = {}
        # The last quote of each symbol, with its step: a quote is a pure function of (symbol, step), and every
        # order and stream tick of a step asks for the same one. One entry per symbol: bounded by the universe.
        self._quotes: dict[str, tuple[int, Quote]] = {}
        # Two-generation cache: lookups promote from ``_old``; when ``_new`` fills it becomes ``_old``. Bounded at
        # 2 * cache_size entries without per-hit bookkeeping, and hot nodes (the top of the bridge) survive.
        self._cache_size = cache_size
        self._new: dict[tuple[int, int], float] = {}
        self._old: dict[tuple[int, int], float] = {}

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def step(self) -> timedelta:
        return self._step

    @property
    def epoch(self) -> datetime:
        return self._epoch

    @property
    def universe(self) -> Universe:
        return self._universe

    def step_index(self, at: datetime) -> int:
        """Which step ``at`` falls in: ``floor((at - epoch) / step)``, negative before the epoch."""
        if at.tzinfo is None:
            raise ValueError("market times must be timezone-aware")
        return (at - self._epoch) // self._step

    def step_start(self, index: int) -> datetime:
        return self._epoch + self._step * index

    def price(self, symbol: str, at: datetime) -> Decimal:
        """Last/mid price for the step containing ``at``, rounded to the cent and never below 0.01."""
        instrument = self._instrument(symbol)
        return _cents(self._raw_price(instrument, self.step_index(at)))

    def quote(self, symbol: str, at: datetime) -> Quote:
        """Bid/ask around ``price()``: half-spread 0.5-3 bp (at least one cent wide), sizes 100-5000 in lots."""
        index = self.step_index(at)
        known = self._quotes.get(symbol)
        if known is not None and known[0] == index:
            return known[1]
        quote = self._quote(self._instrument(symbol), index)
        self._quotes[symbol] = (index, quote)  # one assignment: a reader sees the old pair or the new one
        return quote

    def _quote(self, instrument: Instrument, index: int) -> Quote:
        symbol = instrument.symbol
        mid = _cents(self._raw_price(instrument, index))
        spread_u, bid_lots, ask_lots, _ = self._micro_draws(symbol, index)
        half_spread = mid * Decimal(0.5 + 2.5 * spread_u).quantize(Decimal("0.0001")) / Decimal(10_000)
        # Rounding each side to the nearest cent keeps bid <= price <= ask because price is already on a cent.
        bid = max((mid - half_spread).quantize(_CENT), _CENT)
        ask = (mid + half_spread).quantize(_CENT)
        if ask - bid < _CENT:
            ask = bid + _CENT
        return Quote(symbol=symbol, bid=bid, ask=ask, bid_size=100 * (1 + bid_lots % 50),
                     ask_size=100 * (1 + ask_lots % 50), timestamp=self.step_start(index))

    def trade(self, symbol: str, at: datetime) -> Trade:
        """The step's print: price equals ``price()`` so a fill at ``at`` matches what the stream showed."""
        instrument = self._instrument(symbol)
        index = self.step_index(at)
        price = _cents(self._raw_price(instrument, index))
        size = 1 + self._micro_draws(symbol, index)[3] % 1000
        return Trade(symbol=symbol, price=price, size=size, timestamp=self.step_start(index))

    def returns(self, symbol: str, at: datetime, *, window: timedelta, samples: int) -> list[float]:
        """``samples`` log returns over ``window`` ending at ``at``, at evenly spaced instants.

        Computed from the unrounded model price, so cent rounding does not add noise to volatility estimates.
        Each return spans ``window / samples``; sampling finer than ``step`` yields zero returns inside a step.
        Annualized volatility is ``stdev(returns) * sqrt(year / (window / samples))`` with a 365.25-day year.
        """
        if samples < 1:
            raise ValueError("samples must be >= 1")
        if window <= timedelta(0):
            raise ValueError("window must be positive")
        instrument = self._instrument(symbol)
        start = at - window
        indices = [self.step_index(start + window * i / samples) for i in range(samples + 1)]
        scale = instrument.volatility * self._sqrt_step_years
        with self._lock:
            path = [self._brownian(symbol, index) for index in indices]
        return [scale * (b - a) for a, b in itertools.pairwise(path)]

    def _instrument(self, symbol: str) -> Instrument:
        instrument = self._universe.get(symbol)
        if instrument is None:
            raise KeyError(symbol)
        return instrument

    def _raw_price(self, instrument: Instrument, index: int) -> float:
        with self._lock:
            w = self._brownian(instrument.symbol, index)
        return float(instrument.base_price) * math.exp(instrument.volatility * self._sqrt_step_years * w)

    def _micro_draws(self, symbol: str, index: int) -> tuple[float, int, int, int]:
        """Spread and size draws for one step, from their own hash so they never perturb the price path."""
        with self._lock:
            base = self._micro.get(symbol)
            if base is None:
                base = _hasher(self._seed, symbol, "micro", 32)
                self._micro[symbol] = base
            hasher = base.copy()
        hasher.update(index.to_bytes(9, "big", signed=True))
        digest = hasher.digest()
        spread_u = (int.from_bytes(digest[0:8], "big") >> 11) * _UNIT
        return (spread_u, int.from_bytes(digest[8:16], "big"), int.from_bytes(digest[16:24], "big"),
                int.from_bytes(digest[24:32], "big"))

    def _brownian(self, symbol: str, index: int) -> float:
        """W(index) in units of one step's standard deviation; caller holds the lock."""
        if index == 0:
            return 0.0
        negative = index < 0
        node = -index if negative else index
        if node >= _TOP:
            raise ValueError("time is beyond the simulator's range")
        stream = self._streams.get((symbol, negative))
        if stream is None:
            stream = _Stream(len(self._streams), _hasher(self._seed, symbol, "before" if negative else "after", 16))
            self._streams[(symbol, negative)] = stream
        cached = self._lookup(stream.key, node)
        if cached is not None:
            return cached
        lo = (node >> _BLOCK_BITS) << _BLOCK_BITS
        hi = lo + _BLOCK
        if node == lo:
            return self._walk(stream, node, 0, _TOP, 0.0, stream.top, _LEVELS)
        w_lo = self._block_end(stream, lo)
        w_hi = self._block_end(stream, hi)
        return self._walk(stream, node, lo, hi, w_lo, w_hi, _BLOCK_BITS)

    def _block_end(self, stream: _Stream, node: int) -> float:
        if node == 0:
            return 0.0
        if node == _TOP:
            return stream.top
        cached = self._lookup(stream.key, node)
        if cached is not None:
            return cached
        return self._walk(stream, node, 0, _TOP, 0.0, stream.top, _LEVELS)

    def _walk(self, stream: _Stream, target: int, lo: int, hi: int, w_lo: float, w_hi: float, level: int) -> float:
        """Descend the bridge from [lo, hi] (length 2**level) to ``target``, drawing and caching missing midpoints."""
        key = stream.key
        new = self._new
        old = self._old
        while True:
            mid = (lo + hi) >> 1
            cache_key = (key, mid)
            w = new.get(cache_key)
            if w is None:
                w = old.get(cache_key)
                if w is None:
                    w = 0.5 * (w_lo + w_hi) + _MID_STD[level] * _normal(stream.hasher, mid)
                new[cache_key] = w
                if len(new) >= self._cache_size:
                    self._old = old = new
                    self._new = new = {}
            if mid == target:
                return w
            level -= 1
            if target < mid:
                hi, w_hi = mid, w
            else:
                lo, w_lo = mid, w

    def _lookup(self, key: int, node: int) -> float | None:
        cache_key = (key, node)
        w = self._new.get(cache_key)
        if w is None:
            w = self._old.get(cache_key)
            if w is not None:
                self._store(cache_key, w)
        return w

    def _store(self, cache_key: tuple[int, int], w: float) -> None:
        self._new[cache_key] = w
        if len(self._new) >= self._cache_size:
            self._old = self._new
            self._new = {}


def _hasher(seed: int, symbol: str, purpose: str, digest_size: int) -> hashlib.blake2b:
    """A BLAKE2b primed with the stream identity; copies of it are then fed only the node index."""
    prefix = f"tradefence-market\x00{seed}\x00{symbol}\x00{purpose}\x00".encode()
    return hashlib.blake2b(prefix, digest_size=digest_size)


def _normal(base: hashlib.blake2b, node: int) -> float:
    """Standard normal for one bridge node: two hashed uniforms through Box-Muller."""
    hasher = base.copy()
    hasher.update(node.to_bytes(9, "big"))
    digest = hasher.digest()
    u1 = ((int.from_bytes(digest[0:8], "big") >> 11) + 1) * _UNIT  # (0, 1], so log() is finite
    u2 = (int.from_bytes(digest[8:16], "big") >> 11) * _UNIT
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


def _cents(value: float) -> Decimal:
    return Decimal(f"{max(value, _MIN_PRICE):.2f}")
