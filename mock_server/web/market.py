"""Market hours and quotes, read from the one simulator the stream and fills also use."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from mock_server.web import render
from mock_server.web.routing import Api, Call


def blueprint(api: Api) -> Blueprint:
    bp = Blueprint("market", __name__)

    @api.route(bp, "getMarketClock")
    def market_clock(call: Call) -> ResponseReturnValue:
        return jsonify(render.market_clock(call.services.engine.market_status(), call.services.clock.now()))

    @api.route(bp, "getQuote")
    def get_quote(call: Call) -> ResponseReturnValue:
        return jsonify(render.quote(call.services.engine.quote(call.inputs.path["symbol"])))

    return bp
