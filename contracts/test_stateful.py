"""Sequences through the spec's OpenAPI links: place → get → cancel → get, list → get, batch → get/cancel.

Plain fuzzing of GET /orders/{id} mostly meets 404s; only linked sequences reach real orders, so drift in a
stored order's shape or in cancel's effect shows up here. Each sequence starts from the same account: an
emulator's is reset; on a real account each sequence undoes its own orders (cancels them, sells back what they
bought), so what Hypothesis draws never depends on what an earlier sequence or run left behind.
"""

from __future__ import annotations

from typing import Any

import requests
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case
from schemathesis.schemas import BaseSchema

from contracts.checking import CheckedSession
from contracts.plugin import API_TAGS, SUITE_ACCOUNT
from contracts.run import ContractRun
from contracts.targets import Target


def test_linked_sequences_conform(tradefence_api_schema: BaseSchema, tradefence_examples: int,
                                  tradefence_target: Target, tradefence_api: CheckedSession,
                                  tradefence_http: requests.Session, tradefence_run: ContractRun,
                                  tradefence_trading: tuple[str, ...]) -> None:
    tradefence_api.get("/account")  # the suite's account exists (emulators open it on first use) before its reset
    base = tradefence_api_schema.include(tag=API_TAGS).as_state_machine()
    plane = tradefence_target.control_plane()

    class Machine(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            self.before = set(tradefence_run.ledger.orders)
            if plane is not None:
                plane.reset(SUITE_ACCOUNT)

        def teardown(self) -> None:
            if plane is None:
                tradefence_run.undo([i for i in tradefence_run.ledger.orders if i not in self.before])

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"session": tradefence_http}

    # No shrinking phase: replaying against a live server is not reproducible, and failures carry curl.
    Machine.run(settings=settings(max_examples=tradefence_examples, stateful_step_count=6, deadline=None, database=None,
                                  phases=[Phase.explicit, Phase.generate],
                                  suppress_health_check=list(HealthCheck)))
