"""`make bench`'s scale section without servers: turns rotate, figures are median rounds, verdicts read both ratios."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import report, scale
from benchmarks.load import LoadResult


class FakeServer:
    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 1
        self.pid = 1


def result(rps: float, p50: float) -> dict[str, Any]:
    return LoadResult("fake", scale.CONNECTIONS, 1.0, int(rps), rps, p50, p50 * 2, p50 * 3, 0, 0,
                      server_cores=rps / 1000).as_dict()  # a millisecond of CPU per request


def test_turns_rotate_and_each_figure_is_the_median_round(monkeypatch: pytest.MonkeyPatch) -> None:
    rates = {"empty": iter([300.0, 100.0, 200.0]), "loaded": iter([50.0, 70.0, 60.0])}
    order: list[str] = []

    class NoMeter:
        server_cores = foreign_cores = 0.0

        def __init__(self, server: Any) -> None:
            self.server = server

        def __enter__(self) -> NoMeter:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    def fake_run(port: int, request: Any, connections: int, seconds: float, warmup: float) -> LoadResult:
        name = order[-1]
        rate = next(rates[name])
        return LoadResult("fake", connections, seconds, int(rate), rate, 1.0, 2.0, 3.0, 0, 0)

    monkeypatch.setattr(scale, "run", fake_run)
    monkeypatch.setattr(scale, "CpuMeter", NoMeter)
    monkeypatch.setattr(scale.Contender, "before_run", lambda self: order.append(self.name))
    contenders = [scale.Contender(name, FakeServer(name), "token", name == "empty")  # type: ignore[arg-type]
                  for name in ("empty", "loaded")]
    figures = scale.in_turns(contenders, "market", 1.0, 0.0, 3, lambda _: None, "0 resting")
    assert order == ["empty", "loaded", "loaded", "empty", "empty", "loaded"]
    assert figures["empty"].rps == 200.0 and figures["empty"].rounds == [300.0, 100.0, 200.0]
    assert figures["loaded"].rps == 60.0


def test_a_figure_passes_only_when_both_its_rate_and_its_latency_are_within_the_line() -> None:
    def levels(*pairs: tuple[tuple[float, float], tuple[float, float]]) -> dict[str, Any]:
        return {str(level): {"resting_after_limit_runs": level, "runs": {"market": {"empty": result(*empty),
                                                                         "loaded": result(*loaded)}}}
                for level, (empty, loaded) in zip(scale.LEVELS, pairs, strict=True)}

    within = levels(((1000, 1.0), (900, 1.1)), ((1000, 1.0), (820, 1.2)), ((1000, 1.0), (1000, 1.0)))
    slower = levels(((1000, 1.0), (900, 1.1)), ((1000, 1.0), (1000, 1.3)), ((1000, 1.0), (1000, 1.0)))
    results = {"scale": {"memory": {"filled": scale.FILLED, "seeded": "seeded in 1 s", "levels": within,
                                    "bytes_per_filled_order": 700},
                         "state": {"filled": scale.FILLED, "build_seconds": 1.0, "file_mib": 1, "levels": slower,
                                   "restart_seconds": 9.5, "bytes_per_stored_order": 800}}}
    verdicts = {target["target"]: target for target in report.evaluate(results)}
    memory = verdicts[f"{scale.LABELS['market']} within 1.25x of an empty account, in memory, 1,000,000 filled"]
    state = verdicts[f"{scale.LABELS['market']} within 1.25x of an empty account, with --state, 1,000,000 filled"]
    assert memory["result"] == "PASS" and "10,000: 1.22x / 1.20x / 1.00x" in memory["measured"]
    assert state["result"] == "MISS" and "10,000: 1.00x / 1.30x / 1.00x" in state["measured"]
    assert verdicts["restart on a state file of 1,000,000 orders < 15 s"]["result"] == "PASS"
    assert "| in memory | 100,000 | POST /v1/orders (market) |" in report.markdown(results)
