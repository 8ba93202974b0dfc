"""The account and its positions."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from mock_server.web import render
from mock_server.web.routing import Api, Call


def blueprint(api: Api) -> Blueprint:
    bp = Blueprint("account", __name__)

    @api.route(bp, "getAccount")
    def get_account(call: Call) -> ResponseReturnValue:
        return jsonify(render.account(call.services.engine.account(call.subject)))

    @api.route(bp, "listPositions")
    def list_positions(call: Call) -> ResponseReturnValue:
        return jsonify({"data": [render.position(p) for p in call.services.engine.positions(call.subject)]})

    @api.route(bp, "getPosition")
    def get_position(call: Call) -> ResponseReturnValue:
        return jsonify(render.position(call.services.engine.position(call.subject, call.inputs.path["symbol"])))

    @api.route(bp, "updatePosition")
    def update_position(call: Call) -> ResponseReturnValue:
        result = call.services.engine.update_position(call.subject, call.inputs.path["symbol"],
                                                      call.body["target_quantity"])
        return jsonify(render.position_update(result))

    return bp
