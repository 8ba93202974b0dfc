"""The contract suite's pytest11 entry point, loaded into every pytest run of an environment that installed
tradefence-sandbox.

The suite needs the `contracts` extra (schemathesis, Hypothesis, Faker, websocket-client). With it, this loads
`contracts.plugin` (through `pytest_plugins`, pytest's documented way for a plugin to require another). Without
it, only `--target` is registered, so that asking for the suite says what to install; the user's own test runs
(and the `tradefence_sandbox` fixture, which needs none of it) are not broken by a plugin that cannot load.
"""

from __future__ import annotations

import importlib.util

import pytest

NEEDS = ("schemathesis", "hypothesis", "faker", "websocket")
INSTALL = "pip install 'tradefence-sandbox[contracts]'"


def missing() -> list[str]:
    """The suite's dependencies this environment lacks."""
    return [name for name in NEEDS if importlib.util.find_spec(name) is None]


pytest_plugins = [] if missing() else ["contracts.plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    if missing():
        parser.getgroup("tradefence contract suite").addoption(
            "--target", help=f"the target of the contract suite; it needs the contracts extra: {INSTALL}")


def pytest_configure(config: pytest.Config) -> None:
    absent = missing()
    if absent and config.getoption("--target", None) is not None:
        raise pytest.UsageError(f"the Tradefence contract suite needs {', '.join(absent)}: {INSTALL}")
