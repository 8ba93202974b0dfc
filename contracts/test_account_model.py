"""A model-based test of the account: random sequences of trading calls, the money checked after every step.

Rules place orders (both sides; MARKET, LIMIT, STOP, STOP_LIMIT; every time in force; some with an
Idempotency-Key that is then replayed), cancel them, send batches and move positions the run holds. After every
step the target's public reads must agree with `contracts/account_model.py`, which moves the account only by the
fills of the run's own orders: cash, reserved cash, buying power, equity, positions, cost basis and realized P&L.
Each order read must agree with its request and with every earlier read of it; a final order cannot be cancelled
(`1007`).

It works from the run's own orders only (`contracts/account_trader.py`): other orders and positions may exist on
the account and are left alone, and each example puts back what it bought. With the market closed, every
placement must be refused with `1003` and the account must not move.

What Hypothesis draws never depends on the target's answers: refused orders still enter the bundle (as
refusals), and the first broken contract does not end the example early. It is kept, the remaining steps are
drawn but not sent, and it is raised at the end. A replay therefore draws the same steps even when a live
market makes the failure come sooner or later.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, note, settings
from hypothesis import strategies as st
from hypothesis.errors import UnsatisfiedAssumption
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from contracts import pricing
from contracts.account_trader import Handle, Trader
from contracts.checking import CheckedSession
from contracts.pricing import Plan
from contracts.run import ContractRun

STEPS = 8
T = TypeVar("T")


def run_machine(api: CheckedSession, examples: int, run: ContractRun, symbols: tuple[str, ...]) -> None:
    """`symbols`: a few of the run's own (sells then find shares the run bought); orders carry the run's ids."""
    run_id = uuid.uuid4().hex[:10]

    class AccountMachine(RuleBasedStateMachine):
        orders = Bundle("orders")

        def __init__(self) -> None:
            super().__init__()
            self.trader = Trader(api, run_id, run.ledger.next_client_order_id, run.guard.budget)
            self.failure: Exception | None = None

        def guarded(self, step: Callable[[], T], skipped: T) -> T:
            """Run a step unless the example already failed; keep its failure for the end."""
            if self.failure is not None:
                return skipped
            try:
                return step()
            except UnsatisfiedAssumption:
                raise  # the run's guard held a request back: this example is not the run's to send
            except Exception as exc:
                self.failure = exc
                note(f"the first broken contract, kept for the end of the example: {exc}")
                return skipped

        @initialize()
        def start(self) -> None:
            self.guarded(self.trader.start, None)

        @rule(target=orders, plan=pricing.plans(symbols))
        def place(self, plan: Plan) -> Handle:
            return self.guarded(lambda: self.trader.place(plan), Handle(None, "not sent"))

        @rule(handle=orders)
        def cancel(self, handle: Handle) -> None:
            self.guarded(lambda: self.trader.cancel(handle), None)

        @rule(target=orders, batch=st.lists(pricing.plans(symbols), min_size=1, max_size=3),
              cancel=st.none() | orders)
        def batch(self, batch: list[Plan], cancel: Handle | None) -> Any:
            handles = self.guarded(lambda: self.trader.batch(batch, cancel), [Handle(None, "not sent")] * len(batch))
            return multiple(*handles)

        @rule(target=orders, symbol=st.sampled_from(symbols), change=st.sampled_from((-3, -2, -1, 1, 2, 3)))
        def move_position(self, symbol: str, change: int) -> Handle:
            return self.guarded(lambda: self.trader.move_position(symbol, change), Handle(None, "not sent"))

        @invariant()
        def the_account_agrees_with_the_run_s_fills(self) -> None:
            if self.trader.model is not None:
                self.guarded(self.trader.check, None)

        def teardown(self) -> None:
            try:
                self.trader.clean_up()
            except Exception:
                if self.failure is None:
                    raise
            if self.failure is not None:
                raise self.failure

    run_state_machine_as_test(AccountMachine, settings=settings(
        max_examples=examples, stateful_step_count=STEPS, deadline=None, database=None,
        # No shrinking: each replay trades on a live account; a failure reports every step it took.
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck)))


def test_the_account_agrees_with_the_run_s_own_fills(tradefence_api: CheckedSession,
                                                     tradefence_examples: int, tradefence_run: ContractRun,
                                                     tradefence_trading: tuple[str, ...]) -> None:
    run_machine(tradefence_api, max(tradefence_examples // 5, 2), tradefence_run, tradefence_trading[:3])
