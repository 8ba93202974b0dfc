"""The pytest plugin behind `pytest --target=mock|sandbox|URL` (registered as a pytest11 entry point)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tradefence", "Tradefence contract suite")
    group.addoption("--target", default="mock",
                    help="mock (an in-process emulator, the default), sandbox (Tradefence's sandbox, from "
                         "TRADEFENCE_* variables) or a URL of a server laid out like the emulator")
    group.addoption("--contract-examples", type=int, default=None,
                    help="Hypothesis examples per property/operation (default: small for CI; raise it nightly)")
    group.addoption("--contract-destructive", action="store_true",
                    help="allow slow or destructive checks (rate-limit bursts, oversized orders) on real targets")
