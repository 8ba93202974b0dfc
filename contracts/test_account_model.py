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

Every example begins by resting one buy of each conditional kind (LIMIT, STOP, STOP_LIMIT), one of them with an
Idempotency-Key, so what an open order holds back and what a replay answers are checked on every run, whatever
Hypothesis draws (a nightly CI run draws the same examples each night: Hypothesis derandomizes under `CI`).

What Hypothesis draws never depends on the target's answers, and Hypothesis never sees a broken contract: the
first one is kept with the steps that led to it, the remaining steps and examples are drawn but not sent, and it
is raised once the run is over. A live account cannot replay an example (the market and the account have moved
on), so there is nothing to shrink or replay; the steps say what happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, settings
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
    broken: list[Exception] = []  # the run's first broken contract, its steps in its notes

    class AccountMachine(RuleBasedStateMachine):
        orders = Bundle("orders")

        def __init__(self) -> None:
            super().__init__()
            self.trader = Trader(api, run_id, run.ledger.next_client_order_id, run.guard.budget)
            self.steps: list[str] = []

        def guarded(self, what: str, step: Callable[[], T], skipped: T) -> T:
            """Run a step unless the run already broke a contract; keep the first one, with its steps."""
            if broken:
                return skipped
            self.steps.append(what)
            try:
                return step()
            except UnsatisfiedAssumption:  # the run's guard held a request back: as if refused, nothing was sent
                self.steps.append("  (held back by the run's guard)")
                return skipped
            except Exception as exc:
                exc.add_note("after these steps of one example:\n" + "\n".join(f"  {s}" for s in self.steps))
                broken.append(exc)
                return skipped

        @initialize(target=orders)
        def start(self) -> Any:
            self.guarded("start: read the account", self.trader.start, None)
            return multiple(*(self.place(plan) for plan in pricing.resting_buys(symbols)))

        @rule(target=orders, plan=pricing.plans(symbols))
        def place(self, plan: Plan) -> Handle:
            return self.guarded(f"place {plan}", lambda: self.trader.place(plan), Handle(None, "not sent"))

        @rule(handle=orders)
        def cancel(self, handle: Handle) -> None:
            self.guarded(f"cancel {handle}", lambda: self.trader.cancel(handle), None)

        @rule(target=orders, batch=st.lists(pricing.plans(symbols), min_size=1, max_size=3),
              cancel=st.none() | orders)
        def batch(self, batch: list[Plan], cancel: Handle | None) -> Any:
            handles = self.guarded(f"batch {batch}, cancelling {cancel}", lambda: self.trader.batch(batch, cancel),
                                   [Handle(None, "not sent")] * len(batch))
            return multiple(*handles)

        @rule(target=orders, symbol=st.sampled_from(symbols), change=st.sampled_from((-3, -2, -1, 1, 2, 3)))
        def move_position(self, symbol: str, change: int) -> Handle:
            return self.guarded(f"move {symbol} by {change}", lambda: self.trader.move_position(symbol, change),
                                Handle(None, "not sent"))

        @invariant()
        def the_account_agrees_with_the_run_s_fills(self) -> None:
            if self.trader.model is not None:
                self.guarded("check the account", self.trader.check, None)

        def teardown(self) -> None:
            self.guarded("clean up: cancel what rests, sell back what was bought", self.trader.clean_up, None)

    run_state_machine_as_test(AccountMachine, settings=settings(
        max_examples=examples, stateful_step_count=STEPS, deadline=None, database=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck)))
    if broken:
        raise broken[0]


def test_the_account_agrees_with_the_run_s_own_fills(tradefence_api: CheckedSession,
                                                     tradefence_examples: int, tradefence_run: ContractRun,
                                                     tradefence_trading: tuple[str, ...]) -> None:
    run_machine(tradefence_api, max(tradefence_examples // 5, 2), tradefence_run, tradefence_trading[:3])
