"""Sequences through the spec's OpenAPI links: place → get → cancel → get, list → get, batch → get/cancel.

Plain fuzzing of GET /orders/{id} mostly meets 404s; only linked sequences reach real orders, so drift in a
stored order's shape or in cancel's effect shows up here.
"""

from __future__ import annotations

from typing import Any

import requests
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case
from schemathesis.schemas import BaseSchema

from contracts.checking import CheckedSession
from contracts.plugin import API_TAGS, SUITE_ACCOUNT
from contracts.targets import Target


def test_linked_sequences_conform(tradefence_api_schema: BaseSchema, tradefence_examples: int,
                                  tradefence_target: Target, tradefence_api: CheckedSession,
                                  tradefence_http: requests.Session, tradefence_trading: tuple[str, ...]) -> None:
    tradefence_api.get("/account")  # the suite's account exists (emulators open it on first use) before its reset
    base = tradefence_api_schema.include(tag=API_TAGS).as_state_machine()
    plane = tradefence_target.control_plane()

    class Machine(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            # Links depend on what the account holds; each run starts from an empty account where we can
            # reset it, so Hypothesis sees the same rules available when it replays a run.
            if plane is not None:
                plane.reset(SUITE_ACCOUNT)

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"session": tradefence_http}

    # No shrinking phase: replaying against a live server is not reproducible, and failures carry curl.
    Machine.run(settings=settings(max_examples=tradefence_examples, stateful_step_count=6, deadline=None, database=None,
                                  phases=[Phase.explicit, Phase.generate],
                                  suppress_health_check=list(HealthCheck)))
