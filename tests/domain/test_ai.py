"""The recommender must be reproducible (same seed, step and input) and its numbers must always fit the schema."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mock_server.domain.ai import DISCLAIMER, MODEL, RecommendationSetView, Recommender
from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.market.simulator import MarketSimulator
from mock_server.domain.market.universe import Instrument, Universe

T0 = datetime(2026, 11, 25, 15, 4, 5, tzinfo=UTC)
TOLERANCES = ("CONSERVATIVE", "MODERATE", "AGGRESSIVE")
HORIZONS = ("7_DAYS", "30_DAYS", "90_DAYS", "1_YEAR")


def instrument(symbol: str, price: str, volatility: float) -> Instrument:
    return Instrument(symbol=symbol, name=symbol, exchange="TEST", sector="Test", base_price=Decimal(price),
                      volatility=volatility)


@pytest.fixture(scope="module")
def universe() -> Universe:
    return Universe([
        instrument("CALM", "50.00", 0.05),
        instrument("MID", "120.00", 0.30),
        instrument("WILD", "20.00", 0.90),
        instrument("FLAT", "10.00", 0.0),
        instrument("BIG", "400.00", 0.25),
    ])


def recommender(universe: Universe, at: datetime = T0, seed: int = 7) -> Recommender:
    return Recommender(MarketSimulator(universe, seed=seed), Clock(start=at, frozen=True), seed)


def check_shape(result: RecommendationSetView) -> None:
    assert re.fullmatch(r"rec_[0-9a-f]{24}", result.id)
    assert result.model == MODEL
    assert result.disclaimer == DISCLAIMER
    assert result.generated_at.tzinfo is not None
    assert math.isclose(sum(r.current_weight for r in result.recommendations), 1.0, abs_tol=1e-9)
    assert math.isclose(sum(r.target_weight for r in result.recommendations), 1.0, abs_tol=1e-9)
    for rec in result.recommendations:
        for value in (rec.current_weight, rec.target_weight, rec.confidence, rec.expected_return, rec.volatility):
            assert math.isfinite(value)
        assert 0.0 <= rec.current_weight <= 1.0
        assert 0.0 <= rec.target_weight <= 1.0
        assert 0.0 <= rec.confidence <= 1.0
        assert rec.volatility >= 0.0
        assert rec.current_weight == round(rec.current_weight, 4)
        assert rec.target_weight == round(rec.target_weight, 4)
        assert rec.confidence == round(rec.confidence, 2)
        assert rec.expected_return == round(rec.expected_return, 4)
        assert rec.volatility == round(rec.volatility, 4)
        gap = round((rec.target_weight - rec.current_weight) * 10_000)
        expected = "BUY" if gap > 200 else "SELL" if gap < -200 else "HOLD"
        assert rec.action == expected
        assert rec.rationale and rec.rationale.endswith(".")


def test_same_seed_step_and_input_give_identical_output(universe: Universe) -> None:
    holdings = [("CALM", 10), ("WILD", 300), ("MID", None)]
    first = recommender(universe).recommend(holdings, "MODERATE", "30_DAYS")
    # A fresh simulator (cold cache) and a reading later within the same one-second step agree exactly.
    again = recommender(universe, T0 + timedelta(milliseconds=999)).recommend(holdings, "MODERATE", "30_DAYS")
    assert again == first
    assert first.generated_at == T0


def test_output_moves_with_the_step_and_the_seed(universe: Universe) -> None:
    holdings = [("CALM", 10), ("WILD", 300)]
    base = recommender(universe).recommend(holdings, "MODERATE", "7_DAYS")
    later = recommender(universe, T0 + timedelta(hours=6)).recommend(holdings, "MODERATE", "7_DAYS")
    other_seed = recommender(universe, seed=8).recommend(holdings, "MODERATE", "7_DAYS")
    assert later.id != base.id and other_seed.id != base.id
    assert later.recommendations != base.recommendations
    assert other_seed.recommendations != base.recommendations


def test_id_depends_on_the_request(universe: Universe) -> None:
    engine = recommender(universe)
    ids = {
        engine.recommend([("CALM", 10), ("MID", 5)], "MODERATE", "30_DAYS").id,
        engine.recommend([("CALM", 10), ("MID", 6)], "MODERATE", "30_DAYS").id,
        engine.recommend([("CALM", 10), ("MID", 5)], "AGGRESSIVE", "30_DAYS").id,
        engine.recommend([("CALM", 10), ("MID", 5)], "MODERATE", "90_DAYS").id,
        engine.recommend([("CALM", None), ("MID", None)], "MODERATE", "30_DAYS").id,
    }
    assert len(ids) == 5


def test_unknown_symbol_is_1004_naming_the_first_by_index(universe: Universe) -> None:
    with pytest.raises(ApiError) as caught:
        recommender(universe).recommend([("CALM", 1), ("NOPE", 2), ("ZZZ", None)], "MODERATE", "30_DAYS")
    assert caught.value.code is ErrorCode.INVALID_SYMBOL
    assert caught.value.code.status == 422
    assert caught.value.field == "portfolio.1"
    assert caught.value.message == "Unknown symbol NOPE"


def test_symbols_are_case_sensitive(universe: Universe) -> None:
    with pytest.raises(ApiError) as caught:
        recommender(universe).recommend([("calm", None)], "MODERATE", "30_DAYS")
    assert caught.value.field == "portfolio.0"


@pytest.mark.parametrize(("holdings", "field"), [
    ([], "portfolio"),
    ([("CALM", -1)], "portfolio.0.quantity"),
])
def test_invalid_portfolios_are_4000(universe: Universe, holdings: list[tuple[str, int | None]], field: str) -> None:
    with pytest.raises(ApiError) as caught:
        recommender(universe).recommend(holdings, "MODERATE", "30_DAYS")
    assert caught.value.code is ErrorCode.INVALID_REQUEST
    assert caught.value.field == field


@pytest.mark.parametrize(("tolerance", "horizon", "field"), [
    ("RECKLESS", "30_DAYS", "risk_tolerance"),
    ("MODERATE", "2_DAYS", "time_horizon"),
])
def test_unknown_enums_are_4000(universe: Universe, tolerance: str, horizon: str, field: str) -> None:
    with pytest.raises(ApiError) as caught:
        recommender(universe).recommend([("CALM", 1)], tolerance, horizon)
    assert caught.value.code is ErrorCode.INVALID_REQUEST
    assert caught.value.field == field


@pytest.mark.parametrize("tolerance", TOLERANCES)
@pytest.mark.parametrize("horizon", HORIZONS)
def test_weights_sum_to_one_and_fit_the_schema(universe: Universe, tolerance: str, horizon: str) -> None:
    holdings = [("CALM", 1000), ("MID", 3), ("WILD", 7), ("FLAT", 0), ("BIG", 1)]
    result = recommender(universe).recommend(holdings, tolerance, horizon)
    check_shape(result)
    assert result.risk_tolerance == tolerance and result.time_horizon == horizon
    assert [r.symbol for r in result.recommendations] == ["CALM", "MID", "WILD", "FLAT", "BIG"]


def test_weights_stay_in_range_over_many_steps(universe: Universe) -> None:
    engine_clock = Clock(start=T0, frozen=True)
    engine = Recommender(MarketSimulator(universe, seed=3), engine_clock, 3)
    for _ in range(40):
        engine_clock.advance(timedelta(hours=17, seconds=13))
        check_shape(engine.recommend([("CALM", None), ("WILD", 5), ("BIG", 2)], "AGGRESSIVE", "7_DAYS"))


def test_current_weights_follow_market_value(universe: Universe) -> None:
    simulator = MarketSimulator(universe, seed=7)
    engine = Recommender(simulator, Clock(start=T0, frozen=True), 7)
    result = engine.recommend([("MID", 10), ("BIG", 5)], "MODERATE", "30_DAYS")
    mid = simulator.price("MID", T0) * 10
    big = simulator.price("BIG", T0) * 5
    weights = {r.symbol: r.current_weight for r in result.recommendations}
    assert weights["MID"] == pytest.approx(float(mid / (mid + big)), abs=1e-4)
    assert weights["BIG"] == pytest.approx(float(big / (mid + big)), abs=1e-4)


def test_conservative_gives_the_volatile_symbol_less_than_aggressive(universe: Universe) -> None:
    holdings = [("CALM", None), ("MID", None), ("WILD", None)]
    for hours in range(0, 24 * 60, 24 * 7):  # ten weeks of readings, every horizon
        at = T0 + timedelta(hours=hours)
        for horizon in HORIZONS:
            engine = recommender(universe, at)
            by_tolerance = {
                tolerance: {r.symbol: r for r in engine.recommend(holdings, tolerance, horizon).recommendations}
                for tolerance in TOLERANCES
            }
            conservative = by_tolerance["CONSERVATIVE"]
            aggressive = by_tolerance["AGGRESSIVE"]
            assert conservative["WILD"].target_weight < by_tolerance["MODERATE"]["WILD"].target_weight
            assert conservative["WILD"].target_weight < aggressive["WILD"].target_weight
            assert conservative["CALM"].target_weight > aggressive["CALM"].target_weight
            # The estimates themselves do not depend on tolerance, only the sizing does.
            assert conservative["WILD"].volatility == aggressive["WILD"].volatility
            assert conservative["WILD"].volatility > conservative["CALM"].volatility
            assert "conservative sizing" in conservative["WILD"].rationale
            assert "aggressive sizing" in aggressive["WILD"].rationale


def test_aggressive_follows_momentum(universe: Universe) -> None:
    """Between two symbols of equal volatility, aggressive sizing favors the one with the stronger drift."""
    twins = Universe([instrument("ONE", "100.00", 0.3), instrument("TWO", "100.00", 0.3)])
    for days in range(0, 200, 20):
        result = recommender(twins, T0 + timedelta(days=days)).recommend(
            [("ONE", None), ("TWO", None)], "AGGRESSIVE", "90_DAYS")
        one, two = result.recommendations
        if abs(one.expected_return - two.expected_return) < 0.05:
            continue
        stronger, weaker = (one, two) if one.expected_return > two.expected_return else (two, one)
        assert stronger.target_weight > weaker.target_weight


def test_single_holding_cannot_be_rebalanced(universe: Universe) -> None:
    result = recommender(universe).recommend([("WILD", 12)], "AGGRESSIVE", "1_YEAR")
    check_shape(result)
    (only,) = result.recommendations
    assert (only.current_weight, only.target_weight, only.action) == (1.0, 1.0, "HOLD")
    assert "single holding" in only.rationale
    assert "1-year momentum" in only.rationale


def test_bare_symbols_are_equal_weighted(universe: Universe) -> None:
    result = recommender(universe).recommend([("CALM", None), ("MID", None), ("WILD", None)], "MODERATE", "30_DAYS")
    check_shape(result)
    assert sorted(r.current_weight for r in result.recommendations) == [0.3333, 0.3333, 0.3334]


def test_all_zero_quantities_are_equal_weighted(universe: Universe) -> None:
    result = recommender(universe).recommend([("CALM", 0), ("MID", 0)], "MODERATE", "30_DAYS")
    assert [r.current_weight for r in result.recommendations] == [0.5, 0.5]


def test_a_zero_quantity_next_to_real_holdings_weighs_nothing(universe: Universe) -> None:
    result = recommender(universe).recommend([("CALM", 0), ("MID", 4)], "MODERATE", "30_DAYS")
    assert [r.current_weight for r in result.recommendations] == [0.0, 1.0]


def test_mixed_bare_and_quantified_holdings(universe: Universe) -> None:
    """A bare symbol gets 1/n; the quantified ones split the rest by value."""
    result = recommender(universe).recommend([("MID", 10), ("CALM", None), ("BIG", 10), ("WILD", None)],
                                             "MODERATE", "30_DAYS")
    check_shape(result)
    weights = {r.symbol: r.current_weight for r in result.recommendations}
    assert weights["CALM"] == weights["WILD"] == 0.25
    assert weights["MID"] + weights["BIG"] == pytest.approx(0.5)
    assert weights["BIG"] > weights["MID"]


def test_duplicates_are_merged_by_summing_quantities(universe: Universe) -> None:
    engine = recommender(universe)
    merged = engine.recommend([("MID", 10), ("CALM", 5), ("MID", 5), ("CALM", None)], "MODERATE", "90_DAYS")
    plain = engine.recommend([("MID", 15), ("CALM", 5)], "MODERATE", "90_DAYS")
    assert merged == plain
    assert [r.symbol for r in merged.recommendations] == ["MID", "CALM"]


def test_zero_volatility_instrument_stays_finite(universe: Universe) -> None:
    result = recommender(universe).recommend([("FLAT", 100), ("CALM", 100)], "CONSERVATIVE", "7_DAYS")
    check_shape(result)
    flat = result.recommendations[0]
    assert (flat.volatility, flat.expected_return) == (0.0, 0.0)


def test_rationale_quotes_the_numbers(universe: Universe) -> None:
    result = recommender(universe).recommend([("CALM", 1), ("WILD", 1)], "CONSERVATIVE", "30_DAYS")
    for rec in result.recommendations:
        assert rec.rationale.startswith("30-day momentum ")
        quoted = {f"{rec.volatility:.0%} volatility", f"{rec.volatility:.1%} volatility"}
        assert any(text in rec.rationale for text in quoted)
        assert "-0%" not in rec.rationale and "-0.0%" not in rec.rationale


def test_fifty_symbols_answer_quickly() -> None:
    universe = Universe.load_default()
    holdings = [(symbol, 10) for symbol in universe.symbols[:50]]
    engine = recommender(universe)
    started = time.perf_counter()
    result = engine.recommend(holdings, "MODERATE", "1_YEAR")
    elapsed = time.perf_counter() - started
    check_shape(result)
    assert elapsed < 2.0  # about 3 ms per symbol on a cold simulator; generous for slow CI machines
