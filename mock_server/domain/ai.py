"""The "AI" behind `POST /v1/ai/recommendations`: a transparent, deterministic rebalancing rule.

It only has to look plausible and be reproducible, so it is plain statistics on the simulator's own recent
returns: per symbol an annualized drift and volatility over the horizon, then target weights from a
risk-tolerance-sized score. Everything is a function of (seed, clock step, input), so a test can pin the answer.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.market.simulator import MarketSimulator

MODEL = "tradefence-sim-1"
DISCLAIMER = "Simulated recommendations for testing; not investment advice."

_SECONDS_PER_YEAR = 365.25 * 86_400  # the simulator annualizes over the same year
_UNITS = 10_000  # weights are rounded to 4 dp, i.e. whole units of 1/10 000
_BAND_UNITS = 200  # |target - current| must exceed 0.02 for BUY/SELL
_Z_CAP = 3.0  # a momentum t-statistic beyond 3 adds nothing, and capping keeps exp() tame
_VOL_FLOOR = 0.01  # zero-volatility instruments exist (cash-like test tickers); keep log() and ratios finite


@dataclass(frozen=True, slots=True)
class _Horizon:
    label: str
    window: timedelta
    samples: int  # few enough that a cold simulator answers at once, enough for a stable estimate


@dataclass(frozen=True, slots=True)
class _Sizing:
    """Score = momentum_tilt * z - vol_aversion * ln(vol): inverse-variance at one end, momentum at the other."""

    word: str
    momentum_tilt: float
    vol_aversion: float


_HORIZONS = MappingProxyType({
    "7_DAYS": _Horizon("7-day", timedelta(days=7), 56),  # every 3 hours
    "30_DAYS": _Horizon("30-day", timedelta(days=30), 60),  # every 12 hours
    "90_DAYS": _Horizon("90-day", timedelta(days=90), 90),  # daily
    "1_YEAR": _Horizon("1-year", timedelta(days=365), 104),  # twice a week
})

_SIZINGS = MappingProxyType({
    "CONSERVATIVE": _Sizing("conservative", momentum_tilt=0.25, vol_aversion=2.0),
    "MODERATE": _Sizing("moderate", momentum_tilt=0.5, vol_aversion=1.0),
    "AGGRESSIVE": _Sizing("aggressive", momentum_tilt=1.0, vol_aversion=0.0),
})


@dataclass(frozen=True, slots=True)
class RecommendationView:
    """One `Recommendation`; floats are already rounded (weights 4 dp, confidence 2 dp, return/volatility 4 dp)."""

    symbol: str
    action: str  # BUY | SELL | HOLD
    current_weight: float
    target_weight: float
    confidence: float
    expected_return: float
    volatility: float
    rationale: str


@dataclass(frozen=True, slots=True)
class RecommendationSetView:
    """One `RecommendationSet`; recommendations come in the portfolio's order (first appearance of each symbol)."""

    id: str
    generated_at: datetime
    model: str
    risk_tolerance: str
    time_horizon: str
    recommendations: tuple[RecommendationView, ...]
    disclaimer: str


@dataclass(frozen=True, slots=True)
class _Stats:
    drift: float  # annualized GBM drift estimate (log drift + vol**2 / 2)
    volatility: float  # annualized
    z: float  # t-statistic of the mean log return: the signal's strength given the sample
    samples: int


class Recommender:
    """Turns a portfolio into BUY/SELL/HOLD advice from the simulator's recent price history.

    Answers depend only on the seed, the clock's current simulator step and the input: the reading is snapped
    to the start of its step (which is also ``generated_at``), so two calls within one step agree exactly.
    """

    def __init__(self, simulator: MarketSimulator, clock: Clock, seed: int) -> None:
        self._simulator = simulator
        self._clock = clock
        self._seed = seed

    def recommend(self, holdings: Sequence[tuple[str, int | None]], risk_tolerance: str,
                  time_horizon: str) -> RecommendationSetView:
        """Advice for ``holdings`` (symbol, quantity or None); duplicates are merged by summing quantities.

        Current weights: a holding without a quantity gets an equal share 1/n; holdings with quantities split
        the rest by market value (equally if that value is zero). Raises 1004 naming the first unknown symbol.
        """
        sizing = _SIZINGS.get(risk_tolerance)
        if sizing is None:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"Unknown risk_tolerance {risk_tolerance}",
                           field="risk_tolerance")
        horizon = _HORIZONS.get(time_horizon)
        if horizon is None:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"Unknown time_horizon {time_horizon}", field="time_horizon")
        merged = self._merge(holdings)
        step = self._simulator.step_index(self._clock.now())
        at = self._simulator.step_start(step)
        symbols = list(merged)
        stats = [self._stats(symbol, at, horizon) for symbol in symbols]
        current = _round_weights(self._current_weights(merged, at))
        target = _round_weights(_target_weights(stats, sizing))
        recommendations = tuple(
            _recommendation(symbol, cur, tgt, stat, horizon, sizing, single=len(symbols) == 1)
            for symbol, cur, tgt, stat in zip(symbols, current, target, stats, strict=True)
        )
        return RecommendationSetView(
            id=self._id(step, merged, risk_tolerance, time_horizon), generated_at=at, model=MODEL,
            risk_tolerance=risk_tolerance, time_horizon=time_horizon, recommendations=recommendations,
            disclaimer=DISCLAIMER,
        )

    def _merge(self, holdings: Sequence[tuple[str, int | None]]) -> dict[str, int | None]:
        """Symbol -> summed quantity (None when no entry gave one), in order of first appearance."""
        if not holdings:
            raise ApiError(ErrorCode.INVALID_REQUEST, "portfolio must list at least one holding", field="portfolio")
        universe = self._simulator.universe
        merged: dict[str, int | None] = {}
        for index, (symbol, quantity) in enumerate(holdings):
            if symbol not in universe:
                raise ApiError(ErrorCode.INVALID_SYMBOL, f"Unknown symbol {symbol}", field=f"portfolio.{index}")
            if quantity is not None and quantity < 0:
                raise ApiError(ErrorCode.INVALID_REQUEST, "quantity must be >= 0",
                               field=f"portfolio.{index}.quantity")
            known = merged.get(symbol)
            if quantity is None:
                merged.setdefault(symbol, None)
            else:
                merged[symbol] = quantity if known is None else known + quantity
        return merged

    def _current_weights(self, merged: dict[str, int | None], at: datetime) -> list[float]:
        count = len(merged)
        values: dict[str, Decimal] = {
            symbol: self._simulator.price(symbol, at) * quantity
            for symbol, quantity in merged.items() if quantity is not None
        }
        bare_share = 1.0 / count
        valued_share = len(values) / count
        total = sum(values.values(), Decimal(0))
        weights: list[float] = []
        for symbol in merged:
            if symbol not in values:
                weights.append(bare_share)
            elif total > 0:
                weights.append(valued_share * float(values[symbol] / total))
            else:
                weights.append(bare_share)
        return weights

    def _stats(self, symbol: str, at: datetime, horizon: _Horizon) -> _Stats:
        # Never sample finer than the simulator's step: returns inside one step are zero and would fake calm.
        samples = max(2, min(horizon.samples, horizon.window // self._simulator.step))
        try:
            returns = self._simulator.returns(symbol, at, window=horizon.window, samples=samples)
        except KeyError:  # pragma: no cover - _merge already checked the universe
            raise ApiError(ErrorCode.INVALID_SYMBOL, f"Unknown symbol {symbol}") from None
        dt_years = horizon.window.total_seconds() / samples / _SECONDS_PER_YEAR
        mean = statistics.fmean(returns)
        stdev = statistics.stdev(returns)
        volatility = stdev / math.sqrt(dt_years)
        drift = mean / dt_years + volatility**2 / 2
        z = mean / stdev * math.sqrt(samples) if stdev > 0 else 0.0
        return _Stats(drift=_finite(drift), volatility=_finite(volatility), z=_finite(z), samples=samples)

    def _id(self, step: int, merged: dict[str, int | None], risk_tolerance: str, time_horizon: str) -> str:
        """`rec_` + 24 hex: a hash of everything the answer depends on, so equal answers share an id."""
        digest = hashlib.blake2b(digest_size=12)
        parts = ["tradefence-ai", str(self._seed), str(step), risk_tolerance, time_horizon]
        parts += [f"{symbol}={'' if quantity is None else quantity}" for symbol, quantity in merged.items()]
        for part in parts:
            encoded = part.encode()
            digest.update(len(encoded).to_bytes(4, "big"))
            digest.update(encoded)
        return f"rec_{digest.hexdigest()}"


def _target_weights(stats: Sequence[_Stats], sizing: _Sizing) -> list[float]:
    """Softmax of the risk-sized scores: always positive, sums to 1, no corner solutions to explain away."""
    scores = [
        sizing.momentum_tilt * max(-_Z_CAP, min(_Z_CAP, stat.z))
        - sizing.vol_aversion * math.log(max(stat.volatility, _VOL_FLOOR))
        for stat in stats
    ]
    top = max(scores)
    exps = [math.exp(score - top) for score in scores]
    total = sum(exps)
    return [value / total for value in exps]


def _round_weights(weights: Sequence[float]) -> list[float]:
    """4-dp weights that still sum to exactly 1 (largest remainder), so no rounding pushes one outside [0, 1]."""
    total = sum(weights)
    if not math.isfinite(total) or total <= 0:
        weights = [1.0] * len(weights)
        total = float(len(weights))
    scaled = [weight / total * _UNITS for weight in weights]
    units = [math.floor(value) for value in scaled]
    short = _UNITS - sum(units)
    by_remainder = sorted(range(len(scaled)), key=lambda i: (-(scaled[i] - units[i]), i))
    for i in by_remainder[:short]:
        units[i] += 1
    return [unit / _UNITS for unit in units]


def _recommendation(symbol: str, current: float, target: float, stat: _Stats, horizon: _Horizon, sizing: _Sizing,
                    *, single: bool) -> RecommendationView:
    gap = round(target * _UNITS) - round(current * _UNITS)
    if gap > _BAND_UNITS:
        action, move = "BUY", "adds toward"
    elif gap < -_BAND_UNITS:
        action, move = "SELL", "trims toward"
    else:
        action, move = "HOLD", "holds near"
    momentum = _pct(stat.drift, signed=True)
    numbers = f"{horizon.label} momentum {momentum} annualized vs {_pct(stat.volatility)} volatility"
    if single:
        rationale = f"{numbers}; single holding, so no rebalancing is possible."
    else:
        rationale = f"{numbers}; {sizing.word} sizing {move} {_pct(target)}."
    return RecommendationView(
        symbol=symbol, action=action, current_weight=current, target_weight=target,
        confidence=_confidence(stat), expected_return=_round(stat.drift, 4), volatility=_round(stat.volatility, 4),
        rationale=rationale,
    )


def _confidence(stat: _Stats) -> float:
    """0.3 with no signal, rising toward 0.95 as |t| grows; fewer samples shrink it (n / (n + 8))."""
    strength = 1.0 - math.exp(-abs(stat.z))
    reliability = stat.samples / (stat.samples + 8)
    return _round(min(max(0.3 + 0.65 * strength * reliability, 0.0), 1.0), 2)


def _pct(value: float, *, signed: bool = False) -> str:
    """Percent with one decimal below 10 % and none above, as a person would write it; never "-0%"."""
    digits = 1 if abs(value) < 0.1 else 0
    value = round(value, digits + 2)
    if value == 0:
        value = 0.0
    return f"{value:+.{digits}%}" if signed else f"{value:.{digits}%}"


def _round(value: float, digits: int) -> float:
    rounded = round(_finite(value), digits)
    return 0.0 if rounded == 0 else rounded


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0
