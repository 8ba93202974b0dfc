"""Batch: several operations in one request; each costs one rate-limit token."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from mock_server.domain.trading.batch import BatchOperation
from mock_server.web import render
from mock_server.web.routing import Api, Call


def blueprint(api: Api) -> Blueprint:
    bp = Blueprint("batch", __name__)

    @api.route(bp, "batch", idempotent=True, cost=lambda inputs: len(inputs.body["operations"]))
    def batch(call: Call) -> ResponseReturnValue:
        atomic = bool(call.body.get("atomic", False))
        operations = [BatchOperation(op["action"], op["data"]) for op in call.body["operations"]]
        outcomes = call.services.engine.run_batch(call.subject, operations, atomic=atomic)
        failed = sum(1 for outcome in outcomes if outcome.error is not None)
        return jsonify({"atomic": atomic, "succeeded": len(outcomes) - failed, "failed": failed,
                        "results": [render.batch_outcome(outcome) for outcome in outcomes]})

    return bp
