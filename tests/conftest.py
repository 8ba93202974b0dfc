"""Fixture chain (Flask tutorial style): config → app → live server → session → authenticated session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from mock_server.app import create_app
from mock_server.config import Config
from mock_server.spec.document import SpecDocument
from tests.support.live import CheckedSession, serve, spec_session


@pytest.fixture
def config() -> Config:
    return Config(seed=7, validate_responses=True, rate_limit_capacity=1000,
                  rate_limit_per_second=1000.0)


@pytest.fixture
def app(config: Config, tradefence_spec_document: SpecDocument) -> Iterator[Flask]:
    """`tradefence_spec_document` (the contract plugin's session fixture) is parsed once, not once per app."""
    app = create_app(config, document=tradefence_spec_document)
    yield app
    app.extensions["tradefence"].close()  # background threads stop; open market-data sockets get a close frame


@pytest.fixture
def base_url(app: Flask) -> Iterator[str]:
    with serve(app) as url:
        yield url


@pytest.fixture
def http(base_url: str, app: Flask) -> Iterator[CheckedSession]:
    """Anonymous, spec-checked HTTP session against the live emulator."""
    with spec_session(base_url, app) as session:
        yield session


def mint(http: CheckedSession, subject: str = "trader", scope: str = "trading:read trading:write") -> str:
    response = http.post("/_mock/tokens", json={"subject": subject, "scope": scope})
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


@pytest.fixture
def trader(base_url: str, app: Flask, http: CheckedSession) -> Iterator[CheckedSession]:
    """A spec-checked session holding a token with both scopes for the subject `trader`."""
    with spec_session(base_url, app) as session:
        session.headers["Authorization"] = f"Bearer {mint(http)}"
        yield session
