"""The universe parses the ticker CSV strictly and stays immutable, so every component sees the same symbols."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from mock_server.domain.market.universe import Instrument, Universe

FIXTURE = Path(__file__).parent / "data" / "tickers.csv"
HEADER = "symbol,name,exchange,sector,price,volatility\n"


@pytest.fixture()
def universe() -> Universe:
    return Universe.from_csv(FIXTURE.read_text(encoding="utf-8"))


def test_from_csv_parses_every_field(universe: Universe) -> None:
    aapl = universe.get("AAPL")
    assert aapl == Instrument("AAPL", "Apple Inc", "NASDAQ", "Information Technology", Decimal("227.50"), 0.28)
    assert universe.get("KO") is not None and universe.get("KO").name == "Coca-Cola Co, The"  # quoted comma


def test_lookup_len_contains_and_sorted_symbols(universe: Universe) -> None:
    assert len(universe) == 6
    assert "MSFT" in universe
    assert "NOPE" not in universe
    assert universe.get("NOPE") is None
    assert universe.symbols == ("AAPL", "JPM", "KO", "MSFT", "TSLA", "XOM")
    assert [instrument.symbol for instrument in universe] == list(universe.symbols)


def test_symbols_are_case_sensitive(universe: Universe) -> None:
    assert "aapl" not in universe
    assert universe.get("aapl") is None


def test_instrument_is_frozen(universe: Universe) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        universe.get("AAPL").base_price = Decimal(1)  # type: ignore[misc, union-attr]


def test_with_instruments_returns_new_universe(universe: Universe) -> None:
    reserved = Instrument("TEST1", "Reserved test symbol", "TEST", "Test", Decimal("100.00"), 0.0)
    bigger = universe.with_instruments([reserved])
    assert "TEST1" in bigger and len(bigger) == 7
    assert "TEST1" not in universe and len(universe) == 6


def test_with_instruments_replaces_same_symbol(universe: Universe) -> None:
    pinned = Instrument("AAPL", "Apple pinned", "NASDAQ", "Information Technology", Decimal("100.00"), 0.0)
    replaced = universe.with_instruments([pinned])
    assert replaced.get("AAPL") == pinned
    assert len(replaced) == len(universe)
    with pytest.raises(ValueError, match="duplicate"):
        universe.with_instruments([pinned, pinned])


def test_duplicate_symbols_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Universe.from_csv(HEADER + "A,A,X,S,1,0.1\nA,B,X,S,2,0.2\n")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("A,A,X,S,abc,0.1", "line 2"),
        ("A,A,X,S,0,0.1", "price must be positive"),
        ("A,A,X,S,1,-0.1", "volatility"),
        ("A,A,X,S,1,nan", "volatility"),
        (",A,X,S,1,0.1", "invalid symbol"),
    ],
)
def test_bad_rows_rejected_with_line_number(row: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Universe.from_csv(HEADER + row + "\n")


def test_missing_column_rejected() -> None:
    with pytest.raises(ValueError, match="volatility"):
        Universe.from_csv("symbol,name,exchange,sector,price\nA,A,X,S,1\n")


def test_blank_lines_and_whitespace_tolerated() -> None:
    universe = Universe.from_csv(HEADER + " A , Alpha ,X,S, 1.50 ,0.1\n\n")
    assert universe.get("A") == Instrument("A", "Alpha", "X", "S", Decimal("1.50"), 0.1)


def test_load_default_reads_packaged_csv() -> None:
    resource = resources.files("mock_server.domain.market") / "data" / "tickers.csv"
    if not resource.is_file():
        pytest.skip("packaged tickers.csv not written yet")
    universe = Universe.load_default()
    assert len(universe) > 0
    for instrument in universe:
        assert instrument.symbol == instrument.symbol.upper()
        assert instrument.base_price > 0
