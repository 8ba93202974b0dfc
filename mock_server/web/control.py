"""The /_mock control plane: reset, clock, market mode, and tokens without the browser flow."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from mock_server.domain.market.hours import MarketMode
from mock_server.domain.ratelimit import RateLimitSettings
from mock_server.web import render
from mock_server.web.routing import Api, Call


def blueprint(api: Api) -> Blueprint:
    bp = Blueprint("control", __name__)

    @api.route(bp, "mockReset")
    def reset(call: Call) -> ResponseReturnValue:
        account_id = (call.body or {}).get("account_id")
        if account_id is None:
            call.services.reset()
            return jsonify({"reset": "all"})
        call.services.engine.reset(account_id.removeprefix("acc_"))
        return jsonify({"reset": account_id})

    @api.route(bp, "mockGetClock")
    def get_clock(call: Call) -> ResponseReturnValue:
        return jsonify(_clock(call))

    @api.route(bp, "mockMoveClock")
    def move_clock(call: Call) -> ResponseReturnValue:
        clock = call.services.clock
        action = call.body["action"]
        if action == "freeze":
            clock.freeze()
        elif action == "resume":
            clock.resume()
        elif action == "set":
            clock.set(datetime.fromisoformat(call.body["to"]))
        else:
            clock.advance(timedelta(seconds=call.body["seconds"]))
        return jsonify(_clock(call))

    @api.route(bp, "mockSetMarket")
    def set_market(call: Call) -> ResponseReturnValue:
        engine = call.services.engine
        engine.market_mode = MarketMode(call.body["mode"])
        return jsonify(render.market_clock(engine.market_status(), call.services.clock.now()))

    @api.route(bp, "mockGetRateLimit")
    def get_rate_limit(call: Call) -> ResponseReturnValue:
        return jsonify(_rate_limit(call))

    @api.route(bp, "mockSetRateLimit")
    def set_rate_limit(call: Call) -> ResponseReturnValue:
        call.services.rate_limiter.configure(RateLimitSettings(call.body["capacity"],
                                                               float(call.body["refill_per_second"])))
        return jsonify(_rate_limit(call))

    @api.route(bp, "mockMintToken")
    def mint_token(call: Call) -> ResponseReturnValue:
        body = call.body
        answer = call.services.oauth.mint(
            subject=body["subject"], scopes=tuple(body.get("scope", "trading:read trading:write").split()),
            client_id=body.get("client_id", "sandbox-client"), ttl=timedelta(seconds=body.get("expires_in", 3600)),
        )
        call.services.engine.account(body["subject"])
        response = jsonify(answer)
        response.status_code = 201
        return response

    return bp


def _rate_limit(call: Call) -> dict[str, object]:
    settings = call.services.rate_limiter.settings
    return {"capacity": settings.capacity, "refill_per_second": settings.refill_per_second}


def _clock(call: Call) -> dict[str, object]:
    return {"now": render.timestamp(call.services.clock.now()), "frozen": call.services.clock.frozen}
