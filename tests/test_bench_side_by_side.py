"""`make bench`'s side-by-side REST measurement: turns rotate, each figure is the median round (no servers here:
the load runs are stood in for, the order and the choice of figures are what is tested)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import rest
from benchmarks.load import LoadResult


class FakeServer:
    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 1


def result(connections: int, rps: float) -> LoadResult:
    return LoadResult("fake", connections, 1.0, int(rps), rps, 1.0, 2.0, 3.0, 0, 0)


def test_turns_rotate_and_each_figure_is_the_median_round(monkeypatch: pytest.MonkeyPatch) -> None:
    rates = {"emu": iter([300.0, 100.0, 200.0] * 10), "prism": iter([50.0, 70.0, 60.0] * 10),
             "bare": iter([9000.0] * 10)}
    calls: list[tuple[str, str, int]] = []

    def one_run(server: Any, flavour: Any, endpoint: str, connections: int, seconds: float,
                warmup: float) -> LoadResult:
        calls.append((server.name, endpoint, connections))
        return result(connections, next(rates[server.name]))

    monkeypatch.setattr(rest, "one_run", one_run)
    contenders = [rest.Contender(FakeServer("emu"), rest.EMULATOR, (1, 32), 3),  # type: ignore[arg-type]
                  rest.Contender(FakeServer("prism"), rest.PRISM, (1,), 3),  # type: ignore[arg-type]
                  rest.Contender(FakeServer("bare"), rest.BARE, (1,), 1)]  # type: ignore[arg-type]
    figures = rest.side_by_side(contenders, ["get_order"], 1.0, 0.0, progress=lambda *_: None)

    at_one = [name for name, _, connections in calls if connections == 1]
    # round 1: emu first; round 2: prism first (bare has had its one round); round 3: bare's turn, so emu
    assert at_one == ["emu", "prism", "bare", "prism", "emu", "emu", "prism"]
    assert [name for name, _, connections in calls if connections == 32] == ["emu", "emu", "emu"]
    emu = figures["emu"]["get_order"][1]
    assert emu.rps == 200.0 and emu.rounds == [300.0, 100.0, 200.0]
    assert figures["prism"]["get_order"][1].rps == 60.0
    assert figures["bare"]["get_order"][1].rounds == [9000.0]
    assert set(figures["emu"]["get_order"]) == {1, 32} and set(figures["prism"]["get_order"]) == {1}
