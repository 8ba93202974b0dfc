"""Batch operations and their outcomes, and the rules that turn a failed atomic batch into rollback reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.trading.models import OrderView, PositionUpdateResult

CREATE_ORDER = "CREATE_ORDER"
UPDATE_POSITION = "UPDATE_POSITION"
CANCEL_ORDER = "CANCEL_ORDER"
ACTIONS = (CREATE_ORDER, UPDATE_POSITION, CANCEL_ORDER)
SUCCESS_STATUS = {CREATE_ORDER: 201, UPDATE_POSITION: 200, CANCEL_ORDER: 200}


@dataclass(frozen=True)
class BatchOperation:
    """One schema-valid operation: CREATE_ORDER data is an OrderRequest body, UPDATE_POSITION ``{symbol,
    target_quantity}``, CANCEL_ORDER ``{order_id}``."""

    action: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class BatchOutcome:
    """``status`` is the HTTP status the same call would have had alone; exactly one of result/error is set."""

    index: int
    action: str
    status: int
    result: OrderView | PositionUpdateResult | None
    error: ApiError | None


def success(index: int, action: str, result: OrderView | PositionUpdateResult) -> BatchOutcome:
    return BatchOutcome(index=index, action=action, status=SUCCESS_STATUS[action], result=result, error=None)


def failure(index: int, action: str, error: ApiError) -> BatchOutcome:
    return BatchOutcome(index=index, action=action, status=error.code.status, result=None, error=error)


def rolled_back(operations: Sequence[BatchOperation], failed: int, error: ApiError) -> list[BatchOutcome]:
    """Outcomes of an atomic batch that failed at ``failed``: that one keeps its error, every other (applied then
    undone, or never tried) reports 4024."""
    outcomes = []
    for index, operation in enumerate(operations):
        if index == failed:
            outcomes.append(failure(index, operation.action, error))
        else:
            note = ApiError(ErrorCode.ROLLED_BACK,
                            f"Not applied: operation {failed} failed and the batch is atomic")
            outcomes.append(failure(index, operation.action, note))
    return outcomes
