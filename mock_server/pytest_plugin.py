"""The `tradefence_sandbox` fixture for users' own tests (a pytest11 entry point of the installed package).

One emulator per test session, reset before each test: a reset costs a fraction of a fresh emulator
(docs/performance.md). Override `tradefence_sandbox_config` in the root conftest.py to change its settings.
Everything it registers is named `tradefence_…`, so nothing collides with a user's own fixtures. The emulator is
imported when a test first asks for it, not when pytest loads the plugin: other test runs pay nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mock_server.config import Config
    from mock_server.testing import Sandbox


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("tradefence-sandbox", "Tradefence Sandbox fixture").addoption(
        "--tradefence-tls", action="store_true",
        help="serve tradefence_sandbox over HTTPS and WSS, certified by a throwaway CA "
             "(clients trust tradefence_sandbox.ca_path)")


@pytest.fixture(scope="session")
def tradefence_sandbox_config() -> Config:
    """The settings of the session's emulator: `Config()` (seed 42, the market open, the default rate limit)."""
    from mock_server.config import Config

    return Config()


@pytest.fixture(scope="session")
def tradefence_sandbox_session(request: pytest.FixtureRequest, tradefence_sandbox_config: Config) -> Iterator[Sandbox]:
    """The session's emulator, as the last test left it; most tests want `tradefence_sandbox`."""
    from mock_server.testing import sandbox

    with sandbox(tradefence_sandbox_config, tls=request.config.getoption("--tradefence-tls")) as found:
        yield found


@pytest.fixture
def tradefence_sandbox(tradefence_sandbox_session: Sandbox) -> Sandbox:
    """An emulator as good as new for this test: `url`, `api_url`, `stream_url`, `token(subject)`, the control
    plane (`reset`, `clock`, `market`, `fault`, `account`, `journal`, `trigger`, ...) and `webhooks`, a receiver
    of verified events."""
    tradefence_sandbox_session.reset()
    return tradefence_sandbox_session
