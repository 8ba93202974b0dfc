"""Orders: place, read, list, cancel."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from mock_server.domain.trading.models import OrderRequest, OrderSide
from mock_server.web import render
from mock_server.web.routing import Api, Call


def blueprint(api: Api) -> Blueprint:
    bp = Blueprint("orders", __name__)

    @api.route(bp, "createOrder", idempotent=True)
    def create_order(call: Call) -> ResponseReturnValue:
        placed = call.services.engine.place_order(call.subject, OrderRequest.from_payload(call.body))
        response = jsonify(render.order(placed))
        response.status_code = 201
        response.headers["Location"] = f"/v1/orders/{placed.id}"
        return response

    @api.route(bp, "listOrders")
    def list_orders(call: Call) -> ResponseReturnValue:
        return order_page(call, call.subject)

    @api.route(bp, "getOrder")
    def get_order(call: Call) -> ResponseReturnValue:
        return jsonify(render.order(call.services.engine.get_order(call.subject, call.inputs.path["orderId"])))

    @api.route(bp, "cancelOrder")
    def cancel_order(call: Call) -> ResponseReturnValue:
        return jsonify(render.order(call.services.engine.cancel_order(call.subject, call.inputs.path["orderId"])))

    return bp


def order_page(call: Call, subject: str) -> ResponseReturnValue:
    """One page of ``subject``'s orders, filtered and paged by the query (``listOrders`` and the control plane's
    ``mockListAccountOrders`` take the same parameters and give the same list)."""
    query = call.inputs.query
    side = query.get("side")
    orders, cursor = call.services.engine.list_orders(
        subject, status=query["status"], symbol=query.get("symbol"), side=OrderSide(side) if side else None,
        limit=query["limit"], cursor=query.get("cursor"),
    )
    return jsonify({"data": [render.order(o) for o in orders], "has_more": cursor is not None,
                    "next_cursor": cursor})
