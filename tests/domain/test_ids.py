"""Ids: ULID-shaped, in creation order, the same for the same seed and clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from mock_server.domain.clock import Clock
from mock_server.domain.ids import CROCKFORD, IdGenerator, _base32

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def reference_base32(value: int) -> str:
    """Crockford base32, one digit at a time: the plain definition the fast encoder must match."""
    digits = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        digits.append(CROCKFORD[digit])
    return "".join(reversed(digits))


@pytest.mark.parametrize("value", [0, 1, 31, 32, 1023, 1024, 2**80 - 1, 2**80, 2**127, 2**128 - 1])
def test_encoding_matches_the_definition_at_the_edges(value: int) -> None:
    assert _base32(value) == reference_base32(value)


def test_encoding_matches_the_definition_for_random_values() -> None:
    rng = random.Random(5)
    for _ in range(2_000):
        value = rng.getrandbits(128)
        assert _base32(value) == reference_base32(value)


def test_ids_sort_in_creation_order_also_when_the_clock_stands_still_or_goes_back() -> None:
    clock = Clock(start=T0, frozen=True)
    ids = IdGenerator(1, clock)
    made = [ids.new("ord") for _ in range(50)]
    clock.set(T0 - timedelta(hours=1))
    made += [ids.new("ord") for _ in range(50)]
    clock.set(T0 + timedelta(seconds=1))
    made += [ids.new("ord") for _ in range(50)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(len(i) == 30 and i.startswith("ord_") and set(i[4:]) <= set(CROCKFORD) for i in made)


def test_the_same_seed_and_clock_give_the_same_ids() -> None:
    def run(seed: int) -> list[str]:
        ids = IdGenerator(seed, Clock(start=T0, frozen=True))
        return [ids.new("evt") for _ in range(5)]

    assert run(3) == run(3) != run(4)


def test_the_time_part_is_the_clock_in_milliseconds() -> None:
    made = IdGenerator(1, Clock(start=T0, frozen=True)).new("ord")
    value = 0
    for char in made[4:]:
        value = value * 32 + CROCKFORD.index(char)
    assert value >> 80 == int(T0.timestamp() * 1000)


def test_advance_past_makes_later_ids_sort_after_an_earlier_runs_id() -> None:
    earlier = IdGenerator(1, Clock(start=T0 + timedelta(days=1), frozen=True)).new("ord")
    restarted = IdGenerator(1, Clock(start=T0, frozen=True))
    restarted.advance_past(earlier)
    assert restarted.new("ord") > earlier
