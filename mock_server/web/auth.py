"""The authorization server's two endpoints; all OAuth logic lives in domain/oauth."""

from __future__ import annotations

from html import escape
from urllib.parse import unquote_plus

from flask import Blueprint, Response, jsonify, make_response, redirect, request
from flask.typing import ResponseReturnValue

from mock_server.domain.oauth.server import ConsentPage, ErrorPage, OAuthError, Redirect
from mock_server.spec.validation import InvalidInput
from mock_server.web.routing import Api, Call, services

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def blueprint(api: Api) -> Blueprint:
    bp = Blueprint("auth", __name__)

    def authorize_invalid(exc: InvalidInput) -> ResponseReturnValue:
        return _authorize_answer(services().oauth.authorize_failure(request.args, exc.message))

    @api.route(bp, "authorize", on_invalid=authorize_invalid)
    def authorize(call: Call) -> ResponseReturnValue:
        return _authorize_answer(call.services.oauth.authorize(request.args))

    def token_invalid(exc: InvalidInput) -> ResponseReturnValue:
        return _oauth_error(OAuthError("invalid_request", exc.message))

    @api.route(bp, "token", on_invalid=token_invalid)
    def token(call: Call) -> ResponseReturnValue:
        basic = _basic_credentials()
        try:
            answer = call.services.oauth.token(call.body or {}, basic)
        except OAuthError as exc:
            return _oauth_error(exc, basic_used=basic is not None)
        response = jsonify(answer)
        response.headers.update(NO_STORE)
        return response

    return bp


def _basic_credentials() -> tuple[str, str] | None:
    """client_secret_basic: RFC 6749 §2.3.1 form-encodes id and secret before Base64."""
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return None
    return unquote_plus(auth.username or ""), unquote_plus(auth.password or "")


def _authorize_answer(outcome: Redirect | ErrorPage | ConsentPage) -> ResponseReturnValue:
    if isinstance(outcome, Redirect):
        return redirect(outcome.location, code=302)
    if isinstance(outcome, ConsentPage):
        page = (f"<!doctype html><html><head><title>Authorize {escape(outcome.client_id)}</title></head><body>"
                f"<h1>Tradefence Sandbox</h1><p>{escape(outcome.client_id)} asks to act for "
                f"<b>{escape(outcome.subject)}</b> with: {escape(' '.join(outcome.scopes))}</p>"
                f'<p><a id="approve" href="{escape(outcome.approve)}">Approve</a> '
                f'<a id="deny" href="{escape(outcome.deny)}">Deny</a></p></body></html>')
        return make_response(page, 200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"})
    page = (f"<!doctype html><html><head><title>Authorization error</title></head><body>"
            f"<h1>Authorization error</h1><p>{escape(outcome.message)}</p></body></html>")
    return make_response(page, 400, {"Content-Type": "text/html; charset=utf-8"})


def _oauth_error(exc: OAuthError, *, basic_used: bool = False) -> Response:
    response = jsonify({"error": exc.error, "error_description": exc.description})
    response.status_code = exc.status
    response.headers.update(NO_STORE)
    if exc.status == 401 and basic_used:
        response.headers["WWW-Authenticate"] = 'Basic realm="tradefence"'
    return response
