"""The ticker universe: which symbols the emulator knows and where each one's price starts.

Kept as an immutable value so a simulator, an order book and a recommender built from the same universe can
never disagree about which symbols exist; adding symbols (e.g. reserved test tickers) makes a new universe.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from types import MappingProxyType

_COLUMNS = ("symbol", "name", "exchange", "sector", "price", "volatility")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable symbol; ``volatility`` is annualized (0.28 means 28 % a year) and drives the price model."""

    symbol: str
    name: str
    exchange: str
    sector: str
    base_price: Decimal
    volatility: float


class Universe:
    """An immutable, case-sensitive set of instruments keyed by symbol.

    Symbols are matched exactly as written (uppercase by convention), so ``"aapl"`` is unknown: the API
    rejects it rather than silently trading a different spelling.
    """

    __slots__ = ("_by_symbol", "_symbols")

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        by_symbol: dict[str, Instrument] = {}
        for instrument in instruments:
            _validate(instrument)
            if instrument.symbol in by_symbol:
                raise ValueError(f"duplicate symbol {instrument.symbol!r}")
            by_symbol[instrument.symbol] = instrument
        self._by_symbol = MappingProxyType(by_symbol)
        self._symbols = tuple(sorted(by_symbol))

    @classmethod
    def load_default(cls) -> Universe:
        """The packaged ticker list; read through importlib.resources so it works from a wheel or a zip too."""
        resource = resources.files("mock_server.domain.market") / "data" / "tickers.csv"
        return cls.from_csv(resource.read_text(encoding="utf-8"))

    @classmethod
    def from_csv(cls, text: str) -> Universe:
        """Parse ``symbol,name,exchange,sector,price,volatility`` rows; errors name the offending line."""
        reader = csv.DictReader(io.StringIO(text))
        header = tuple((name or "").strip() for name in (reader.fieldnames or ()))
        missing = [column for column in _COLUMNS if column not in header]
        if missing:
            raise ValueError(f"tickers CSV is missing columns: {', '.join(missing)}")
        instruments: list[Instrument] = []
        for row in reader:
            line = reader.line_num
            cells = {(key or "").strip(): (value or "").strip() for key, value in row.items() if key is not None}
            if not any(cells.values()):
                continue
            try:
                instrument = Instrument(
                    symbol=cells["symbol"],
                    name=cells["name"],
                    exchange=cells["exchange"],
                    sector=cells["sector"],
                    base_price=Decimal(cells["price"]),
                    volatility=float(cells["volatility"]),
                )
                _validate(instrument)
            except (InvalidOperation, ValueError) as exc:
                raise ValueError(f"tickers CSV line {line}: {exc}") from exc
            instruments.append(instrument)
        return cls(instruments)

    def get(self, symbol: str) -> Instrument | None:
        return self._by_symbol.get(symbol)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol

    def __len__(self) -> int:
        return len(self._symbols)

    def __iter__(self) -> Iterator[Instrument]:
        """Instruments in symbol order, so listings are stable across runs."""
        return (self._by_symbol[symbol] for symbol in self._symbols)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    def with_instruments(self, extra: Iterable[Instrument]) -> Universe:
        """A new universe with ``extra`` added; an extra instrument replaces an existing one with the same symbol.

        Replacement (rather than an error) lets reserved test symbols pin their own price and volatility even
        if the packaged list happens to contain the same ticker.
        """
        merged = dict(self._by_symbol)
        added: dict[str, Instrument] = {}
        for instrument in extra:
            if instrument.symbol in added:
                raise ValueError(f"duplicate symbol {instrument.symbol!r}")
            added[instrument.symbol] = instrument
        merged.update(added)
        return Universe(merged.values())

    def __repr__(self) -> str:
        return f"Universe({len(self)} instruments)"


def _validate(instrument: Instrument) -> None:
    if not instrument.symbol or instrument.symbol != instrument.symbol.strip():
        raise ValueError(f"invalid symbol {instrument.symbol!r}")
    if not instrument.base_price.is_finite() or instrument.base_price <= 0:
        raise ValueError(f"{instrument.symbol}: price must be positive, got {instrument.base_price}")
    if not math.isfinite(instrument.volatility) or instrument.volatility < 0:
        raise ValueError(f"{instrument.symbol}: volatility must be >= 0, got {instrument.volatility}")
