"""The pytest plugin behind `pytest --target=mock|sandbox|URL` (registered as a pytest11 entry point).

Session fixtures resolve the target once, start an in-process emulator for `mock`, and log in once.
Tests that need the emulator's control plane use `tradefence_control`, which skips with a reason on real targets.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema

from contracts.checking import CheckedSession
from contracts.control import ControlPlane
from contracts.credentials import Credentials, MissingCredentials, code_flow, from_environment
from contracts.targets import Target, in_process_emulator
from mock_server.spec.document import SpecDocument

DEFAULT_EXAMPLES = 25
SUITE_SUBJECT = "contract-suite"  # the emulator user the suite signs in as, so it never touches yours
SUITE_ACCOUNT = f"acc_{SUITE_SUBJECT}"
API_TAGS = ["orders", "positions", "account", "market", "ai", "batch"]
# Valid requests may still be refused by the rules (unknown symbol 1004, funds 1002, market 1003, position 1006)
ACCEPTED = ["2xx", "401", "403", "404", "409", "422", "429"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tradefence", "Tradefence contract suite")
    group.addoption("--target", default="mock",
                    help="mock (an in-process emulator, the default), sandbox (Tradefence's sandbox, from "
                         "TRADEFENCE_* variables) or a URL of a server laid out like the emulator")
    group.addoption("--contract-examples", type=int, default=DEFAULT_EXAMPLES,
                    help=f"Hypothesis examples per operation and property (default {DEFAULT_EXAMPLES}; "
                         "raise it for nightly runs)")
    group.addoption("--contract-destructive", action="store_true",
                    help="on real targets, also run slow or destructive checks (rate-limit bursts, "
                         "oversized orders)")
    group.addoption("--contract-seed", type=int, default=1234, help="seed of the in-process emulator (mock)")


@pytest.fixture(scope="session")
def tradefence_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    name = request.config.getoption("--target")
    if name == "mock":
        with in_process_emulator(request.config.getoption("--contract-seed")) as base:
            yield Target.from_base("mock", base)
    elif name == "sandbox":
        yield Target.sandbox(os.environ)
    elif name.startswith(("http://", "https://")):
        target = Target.from_base(name, name)
        plane = target.control_plane()
        if plane is None:
            yield target
            return
        # An emulator someone runs with its default limits (`make mock-up`): the suite's own volume is not what
        # its rate limiter is for, so lift it for the session (test_2001 narrows it on purpose) and restore it.
        try:
            previous = plane.rate_limit(1_000_000, 1_000_000.0)
            try:
                yield target
            finally:
                plane.rate_limit(previous["capacity"], previous["refill_per_second"])
        finally:
            plane.close()
    else:
        raise pytest.UsageError(f"--target must be mock, sandbox or a URL, not {name!r}")


@pytest.fixture(scope="session")
def tradefence_spec_document() -> SpecDocument:
    return SpecDocument.load()


@pytest.fixture(scope="session")
def tradefence_credentials(tradefence_target: Target) -> Credentials:
    """Obtained once per session."""
    if tradefence_target.is_emulator:
        return code_flow(tradefence_target, login_hint=SUITE_SUBJECT)
    try:
        return from_environment(tradefence_target, os.environ)
    except MissingCredentials as exc:
        pytest.skip(f"no credentials for {tradefence_target.name}: {exc}")


@pytest.fixture(scope="session")
def tradefence_api_schema(tradefence_target: Target, tradefence_credentials: Credentials,
                          tradefence_spec_document: SpecDocument, tradefence_examples: int) -> BaseSchema:
    """The spec as schemathesis sees it: the target's /v1 base, the session's token, both generation modes."""
    config = SchemathesisConfig.from_dict({
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ACCEPTED},
            # DELETE /orders/{id} cancels; the order stays readable as CANCELLED (as Alpaca's does), which
            # schemathesis's use-after-free heuristic would call a bug. test_properties checks cancel instead.
            "use_after_free": {"enabled": False},
        },
    })
    schema = schemathesis.openapi.from_dict(copy.deepcopy(tradefence_spec_document.raw), config=config)
    schema.config.update(base_url=tradefence_target.api_url, headers=tradefence_credentials.headers)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                    max_examples=tradefence_examples)
    return schema


@pytest.fixture(scope="session")
def tradefence_examples(request: pytest.FixtureRequest) -> int:
    return request.config.getoption("--contract-examples")


@pytest.fixture
def tradefence_api(tradefence_target: Target, tradefence_credentials: Credentials,
                   tradefence_spec_document: SpecDocument) -> Iterator[CheckedSession]:
    """The API (`/v1`) with the session's token; every response is checked against the spec."""
    with CheckedSession(tradefence_target.api_url, tradefence_spec_document) as session:
        session.headers.update(tradefence_credentials.headers)
        yield session


@pytest.fixture
def tradefence_anonymous_api(tradefence_target: Target,
                             tradefence_spec_document: SpecDocument) -> Iterator[CheckedSession]:
    with CheckedSession(tradefence_target.api_url, tradefence_spec_document) as session:
        yield session


@pytest.fixture
def tradefence_auth_server(tradefence_target: Target,
                           tradefence_spec_document: SpecDocument) -> Iterator[CheckedSession]:
    with CheckedSession(tradefence_target.auth_url, tradefence_spec_document) as session:
        yield session


@pytest.fixture
def tradefence_control(tradefence_target: Target) -> Iterator[ControlPlane]:
    """The emulator's control plane; skips on targets that have none (a real sandbox). Resumes the clock and
    reopens the market afterwards, so one test's time travel never leaks into the next."""
    plane = tradefence_target.control_plane()
    if plane is None:
        pytest.skip(f"needs the emulator's control plane (/_mock); {tradefence_target.name} has none")
    try:
        yield plane
    finally:
        try:
            plane.market("open")
            plane.resume()
        finally:
            plane.close()


@pytest.fixture
def tradefence_destructive(request: pytest.FixtureRequest, tradefence_target: Target) -> None:
    """Slow or state-changing checks run on emulators always, on real targets only when asked."""
    if not tradefence_target.is_emulator and not request.config.getoption("--contract-destructive"):
        pytest.skip("destructive on a real target: pass --contract-destructive to run it")
