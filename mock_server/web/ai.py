"""AI recommendations: computed by domain/ai.py from the simulator's recent returns."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from mock_server.web import render
from mock_server.web.routing import Api, Call


def blueprint(api: Api) -> Blueprint:
    bp = Blueprint("ai", __name__)

    @api.route(bp, "getAIRecommendations")
    def recommendations(call: Call) -> ResponseReturnValue:
        holdings = [(item, None) if isinstance(item, str) else (item["symbol"], item.get("quantity"))
                    for item in call.body["portfolio"]]
        result = call.services.recommender.recommend(holdings, call.body["risk_tolerance"], call.body["time_horizon"])
        return jsonify(render.recommendations(result))

    return bp
