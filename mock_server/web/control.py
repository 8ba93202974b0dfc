"""The /_mock control plane: reset, seed, clock, market mode, accounts, clients, tokens without the browser flow,
injected faults, the request journal and a summary of the state."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from mock_server import heap
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.faults import FaultRequest
from mock_server.domain.journal import JournalFilter
from mock_server.domain.market.hours import MarketMode
from mock_server.domain.oauth.clients import ALL_SCOPES, OAuthClient
from mock_server.domain.patterns import PathPattern
from mock_server.domain.ratelimit import RateLimitSettings
from mock_server.re2_patterns import compile_pattern
from mock_server.services import Services, reseeded
from mock_server.web import render
from mock_server.web.orders import order_page
from mock_server.web.routing import Api, Call


def blueprint(api: Api) -> Blueprint:
    bp = Blueprint("control", __name__)

    @api.route(bp, "mockReset")
    def reset(call: Call) -> ResponseReturnValue:
        account_id = (call.body or {}).get("account_id")
        if account_id is None:
            call.services.reset()
            return jsonify({"reset": "all"})
        subject = _subject(account_id)
        call.services.engine.reset(subject)
        # Its stored Idempotency-Key answers name orders that are gone now: a replay would point at nothing.
        call.services.idempotency.reset(subject)
        return jsonify({"reset": account_id})

    @api.route(bp, "mockGetClock")
    def get_clock(call: Call) -> ResponseReturnValue:
        return jsonify(_clock(call.services))

    @api.route(bp, "mockMoveClock")
    def move_clock(call: Call) -> ResponseReturnValue:
        clock = call.services.clock
        action = call.body["action"]
        try:
            if action == "freeze":
                clock.freeze()
            elif action == "resume":
                clock.resume()
            elif action == "set":
                # RFC 3339 allows a lower-case t and z; Python 3.11's fromisoformat does not.
                clock.set(datetime.fromisoformat(call.body["to"].upper()))
            else:
                clock.advance(timedelta(seconds=call.body["seconds"]))
        except (ValueError, OverflowError) as exc:  # e.g. a reading past year 9999
            field = "to" if action == "set" else "seconds"
            raise ApiError(ErrorCode.INVALID_REQUEST, f"{field}: the clock cannot go there ({exc})",
                           field=field) from None
        return jsonify(_clock(call.services))

    @api.route(bp, "mockSetMarket")
    def set_market(call: Call) -> ResponseReturnValue:
        engine = call.services.engine
        engine.market_mode = MarketMode(call.body["mode"])
        return jsonify(render.market_clock(engine.market_status(), call.services.clock.now()))

    @api.route(bp, "mockGetRateLimit")
    def get_rate_limit(call: Call) -> ResponseReturnValue:
        return jsonify(_rate_limit(call.services))

    @api.route(bp, "mockSetRateLimit")
    def set_rate_limit(call: Call) -> ResponseReturnValue:
        call.services.rate_limiter.configure(RateLimitSettings(call.body["capacity"],
                                                               float(call.body["refill_per_second"])))
        return jsonify(_rate_limit(call.services))

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

    @api.route(bp, "mockListAccounts")
    def list_accounts(call: Call) -> ResponseReturnValue:
        return jsonify({"data": [render.account(view) for view in call.services.engine.accounts()]})

    @api.route(bp, "mockCreateAccount")
    def create_account(call: Call) -> ResponseReturnValue:
        subject, cash = call.body["subject"], call.body.get("cash")
        engine = call.services.engine
        existed = engine.has_account(subject)
        view = engine.open_account(subject, None if cash is None else Decimal(str(cash)))
        return jsonify(render.account(view)), 200 if existed else 201

    @api.route(bp, "mockDeleteAccount")
    def delete_account(call: Call) -> ResponseReturnValue:
        subject = _existing_subject(call)
        view = call.services.engine.close_account(subject)
        call.services.idempotency.reset(subject)  # its stored answers name orders that are gone now
        return jsonify(render.account(view))

    @api.route(bp, "mockListAccountOrders")
    def list_account_orders(call: Call) -> ResponseReturnValue:
        return order_page(call, _existing_subject(call))

    @api.route(bp, "mockListAccountPositions")
    def list_account_positions(call: Call) -> ResponseReturnValue:
        positions = call.services.engine.positions(_existing_subject(call))
        return jsonify({"data": [render.position(p) for p in positions]})

    @api.route(bp, "mockRegisterClient")
    def register_client(call: Call) -> ResponseReturnValue:
        body = call.body
        client = call.services.oauth.register_client(OAuthClient(
            body["client_id"], body["client_secret"], tuple(body["redirect_uris"]),
            tuple(body.get("scopes", ALL_SCOPES)),
        ))
        return jsonify({"client_id": client.client_id, "client_secret": client.client_secret,
                        "redirect_uris": list(client.redirect_uris), "scopes": list(client.scopes)}), 201

    swap = threading.Lock()  # one reseed at a time (per app: each create_app builds its own blueprint)

    @api.route(bp, "mockReseed")
    def reseed(call: Call) -> ResponseReturnValue:
        """Build fresh services for the seed, swap them in, then close the old ones (their threads and sockets).

        Requests already running finish on the old services; every later one gets the new ones.
        """
        with swap:
            old: Services = current_app.extensions["tradefence"]
            fresh = reseeded(old, call.body["seed"])
            current_app.extensions["tradefence"] = fresh
        old.close(grace=0)
        heap.thaw()  # the old services are one large cycle that the CLI's collector may hold frozen
        return jsonify(_state(fresh))

    @api.route(bp, "mockGetState")
    def get_state(call: Call) -> ResponseReturnValue:
        return jsonify(_state(call.services))

    @api.route(bp, "mockListFaults")
    def list_faults(call: Call) -> ResponseReturnValue:
        return jsonify({"data": [render.fault(fault) for fault in call.services.faults.all()]})

    @api.route(bp, "mockCreateFault")
    def create_fault(call: Call) -> ResponseReturnValue:
        body = call.body
        code = body.get("error_code")
        request = FaultRequest(
            operation=body.get("operation"), path=body.get("path"), latency_ms=body.get("latency_ms", 0),
            error_code=None if code is None else ErrorCode(code), status=body.get("status"),
            drop_connection=body.get("drop_connection", False),
            stream_disconnect_after=body.get("stream_disconnect_after"), message=body.get("message"),
            retry_after=body.get("retry_after"), count=body.get("count"),
            probability=float(body.get("probability", 1)),
        )
        return jsonify(render.fault(call.services.faults.add(request, api.forcible))), 201

    @api.route(bp, "mockClearFaults")
    def clear_faults(call: Call) -> ResponseReturnValue:
        return jsonify({"deleted": call.services.faults.clear()})

    @api.route(bp, "mockDeleteFault")
    def delete_fault(call: Call) -> ResponseReturnValue:
        return jsonify(render.fault(call.services.faults.remove(call.inputs.path["faultId"])))

    @api.route(bp, "mockGetJournal")
    def get_journal(call: Call) -> ResponseReturnValue:
        query = call.inputs.query
        wanted = JournalFilter(method=query.get("method"), path=_pattern(query.get("path")),
                               operation=query.get("operation"), status=query.get("status"), limit=query["limit"])
        return jsonify({"data": [render.journal_entry(entry) for entry in call.services.journal.entries(wanted)]})

    @api.route(bp, "mockClearJournal")
    def clear_journal(call: Call) -> ResponseReturnValue:
        return jsonify({"deleted": call.services.journal.clear()})

    return bp


def _existing_subject(call: Call) -> str:
    """The subject of the path's `accountId`; 404 when it has no account (a read must not open one)."""
    account_id = call.inputs.path["accountId"]
    subject = _subject(account_id)
    if not call.services.engine.has_account(subject):
        raise ApiError(ErrorCode.NOT_FOUND, f"No account {account_id}")
    return subject


def _subject(account_id: str) -> str:
    """Account ids are `acc_<subject>`; anything else names no account."""
    if not account_id.startswith("acc_"):
        raise ApiError(ErrorCode.NOT_FOUND, f"No account {account_id}")
    return account_id.removeprefix("acc_")


def _pattern(text: str | None) -> PathPattern | None:
    if text is None:
        return None
    try:
        return compile_pattern(text)
    except ValueError as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"path is {exc}", field="path") from None


def _state(services: Services) -> dict[str, object]:
    engine = services.engine
    summary = engine.summary()
    return {
        "seed": services.config.seed,
        "clock": _clock(services),
        "market_mode": str(engine.market_mode), "market_open": engine.market_status().is_open,
        "accounts": summary.accounts, "orders": summary.orders, "open_orders": summary.open_orders,
        "positions": summary.positions,
        "rate_limit": _rate_limit(services),
        "faults": len(services.faults), "journal_size": len(services.journal),
        "journal_capacity": services.journal.capacity,
    }


def _rate_limit(services: Services) -> dict[str, object]:
    settings = services.rate_limiter.settings
    return {"capacity": settings.capacity, "refill_per_second": settings.refill_per_second}


def _clock(services: Services) -> dict[str, object]:
    return {"now": render.timestamp(services.clock.now()), "frozen": services.clock.frozen}
