"""Auth over time, checked cheaply and honestly: a token works through its life and not past it, and a read-only
token is refused every write with `1005`.

Waiting out a real sandbox's hour is not cheap, so:

- the session's token is used once it is `WITHIN_LIFE` seconds old (halfway, for a shorter life): a token that dies
  early is refused there, well before its `exp`;
- what the token endpoint says of a token's life (`expires_in`) must be what the token says (`exp - iat`);
- a token is watched to its end where that is cheap: one the emulator's control plane mints (its clock then moves
  past the token's `exp`), or a grant of the run's own when the target issues tokens that live at most
  `SHORT_LIFE` seconds; otherwise that check skips and says why.

A read-only token is the user's (`TRADEFENCE_READ_ONLY_TOKEN`), or a grant of the run's own with the
`trading:read` scope; every write operation of the spec must refuse it with `403`, `1005` and an
`insufficient_scope` challenge. The writes are harmless should a target accept them: an order that rests far from
the market (cancelled at once), a position moved to where it is, a batch that cancels nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
import requests

from contracts import pricing
from contracts.checking import CheckedSession, violation
from contracts.credentials import Credentials
from contracts.grants import OWN_SUBJECT, claims, own_grant
from contracts.plugin import API_TAGS
from contracts.run import ContractRun
from mock_server.spec.document import SpecDocument

WITHIN_LIFE = 8.0  # seconds into its life a token is used again
SHORT_LIFE = 30  # a token that lives at most this long is watched to its end
MINTED_LIFE = 60  # seconds: the life of a token minted through the control plane (its clock then jumps)
UNKNOWN_ORDER = "ord_00000000000000000000000000"


def wait_until(moment: float) -> None:
    """Wait for the wall clock to reach `moment` (a token's age is the condition; nothing else signals it)."""
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 1.0))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_token_works_until_expires_in(tradefence_anonymous_api: CheckedSession,
                                          tradefence_credentials: Credentials) -> None:
    """The session's token, used again once it is `WITHIN_LIFE` s old (its age by its own `iat`)."""
    token = tradefence_credentials.access_token
    found = claims(token)
    if found is None:
        pytest.skip("the access token is not a JWT with iat and exp: its age cannot be known")
    life = found["exp"] - found["iat"]
    if life <= 0:
        raise AssertionError(f"[token] exp after iat: the token's exp {found['exp']} is not after its iat")
    first = tradefence_anonymous_api.get("/account", headers=bearer(token))
    if first.status_code != 200:
        raise violation("getAccount", "works until expires_in", first, "the session's token is refused")
    age = min(WITHIN_LIFE, life / 2)
    wait_until(found["iat"] + age)
    again = tradefence_anonymous_api.get("/account", headers=bearer(token))
    if again.status_code != 200:
        raise violation("getAccount", "works until expires_in", again,
                        f"refused {time.time() - found['iat']:.0f} s into a life of {life:.0f} s (exp - iat)")


def test_exp_agrees_with_expires_in(tradefence_run: ContractRun, tradefence_http: requests.Session,
                                    tradefence_credentials: Credentials,
                                    tradefence_auth_server: CheckedSession) -> None:
    """What the token endpoint says of a token's life (`expires_in`) is what the token says (`exp - iat`), give or
    take the second both are rounded to: clients schedule their refresh by the one, the API judges by the other.
    Read from refreshing a grant of the run's own, so the user's refresh token is never spent."""
    grant = own_grant(tradefence_run.target, tradefence_http, tradefence_credentials)
    response = tradefence_auth_server.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": grant.refresh_token, "client_id": grant.client_id,
        "client_secret": grant.client_secret})
    if response.status_code != 200:
        raise violation("token", "refresh", response, "expected 200 for a fresh grant's refresh token")
    body = response.json()
    found = claims(body["access_token"])
    if found is None:
        pytest.skip("the access token is not a JWT with iat and exp")
    life = found["exp"] - found["iat"]
    if abs(life - body["expires_in"]) > 1:
        raise violation("token", "exp agrees with expires_in", response,
                        f"expires_in {body['expires_in']} s, but the token's exp - iat is {life:.0f} s")


def test_a_token_past_expires_in_is_refused(tradefence_run: ContractRun, tradefence_http: requests.Session,
                                            tradefence_credentials: Credentials,
                                            tradefence_anonymous_api: CheckedSession) -> None:
    """Watched to its end: with a control plane, a minted token and the emulator's clock moved past its `exp`;
    elsewhere a short-lived grant of the run's own, and the wall clock."""
    plane = tradefence_run.target.control_plane()
    setting = plane.setting() if plane is not None else None  # an emulator someone runs gets its clock back
    try:
        if plane is not None:
            token = plane.mint(f"{OWN_SUBJECT}-lifetime", expires_in=MINTED_LIFE)
        else:
            token = own_grant(tradefence_run.target, tradefence_http, tradefence_credentials).access_token
        found = claims(token)
        if found is None:
            pytest.skip("the access token is not a JWT with iat and exp: its end cannot be known")
        life = found["exp"] - found["iat"]
        if life > SHORT_LIFE and plane is None:
            pytest.skip(f"{tradefence_run.target.name}'s tokens live {life:.0f} s: watching one to its end is not "
                        f"cheap (it runs where tokens live at most {SHORT_LIFE} s)")
        used = tradefence_anonymous_api.get("/account", headers=bearer(token))
        if used.status_code != 200:
            raise violation("getAccount", "works until expires_in", used, "a fresh token is refused")
        if plane is not None:
            plane.freeze()
            plane.advance(life + 1)
        else:
            wait_until(found["exp"] + 1)
        response = tradefence_anonymous_api.get("/account", headers=bearer(token))
        if response.status_code != 401 or response.json().get("error", {}).get("code") != 1001:
            raise violation("getAccount", "refused after expires_in", response,
                            f"expected 401 with code 1001 once {life:.0f} s of life had passed")
        if 'error="invalid_token"' not in response.headers.get("WWW-Authenticate", ""):
            raise violation("getAccount", "refused after expires_in", response, 'no error="invalid_token" challenge')
    finally:
        if plane is not None and setting is not None:
            plane.restore(setting)
            plane.close()


def writes(api: CheckedSession, read_only: dict[str, str], run: ContractRun,
           symbol: str) -> dict[str, Callable[[], requests.Response]]:
    """One harmless write per write operation, sent with the read-only token; what would trade is the run's."""

    def create_order() -> requests.Response:
        quote = api.get(f"/market/quotes/{symbol}")
        if quote.status_code != 200:
            raise violation("getQuote", "a listed symbol has a quote", quote, "expected 200")
        plan = pricing.Plan(symbol, "BUY", "LIMIT", "DAY", 1, False, Decimal("0.5"), False)
        response = api.post("/orders", json=pricing.body(plan, quote.json(), 1, run.ledger.next_client_order_id()),
                            headers=read_only)
        if response.status_code == 201:
            api.delete(f"/orders/{response.json()['id']}")  # with the session's token
        return response

    def update_position() -> requests.Response:
        held = api.get(f"/positions/{symbol}")
        quantity = held.json()["quantity"] if held.status_code == 200 else 0
        return api.patch(f"/positions/{symbol}", json={"target_quantity": quantity}, headers=read_only)

    return {
        "createOrder": create_order,
        "cancelOrder": lambda: api.delete(f"/orders/{UNKNOWN_ORDER}", headers=read_only),
        "updatePosition": update_position,
        "batch": lambda: api.post("/batch", headers=read_only, json={"operations": [
            {"action": "CANCEL_ORDER", "data": {"order_id": UNKNOWN_ORDER}}]}),
    }


def test_a_read_only_token_gets_1005_on_every_write(tradefence_run: ContractRun, tradefence_http: requests.Session,
                                                    tradefence_credentials: Credentials,
                                                    tradefence_api: CheckedSession,
                                                    tradefence_spec_document: SpecDocument,
                                                    tradefence_trading: tuple[str, ...]) -> None:
    token = os.environ.get("TRADEFENCE_READ_ONLY_TOKEN")
    if token:
        tradefence_run.secrets.add(token, "$READ_ONLY_TOKEN")
    else:
        token = own_grant(tradefence_run.target, tradefence_http, tradefence_credentials,
                          scope="trading:read").access_token
    read_only = bearer(token)
    read = tradefence_api.get("/account", headers=read_only)
    if read.status_code != 200:
        raise violation("getAccount", "a read-only token reads", read, "expected 200 with the trading:read scope")
    sends = writes(tradefence_api, read_only, tradefence_run, tradefence_trading[0])
    secured = {op.operation_id for op in tradefence_spec_document.operations
               if op.tag in API_TAGS and "trading:write" in op.scopes}
    assert secured == set(sends), f"every write operation must be tried: {secured ^ set(sends)}"
    for operation, send in sorted(sends.items()):
        response = send()
        if response.status_code != 403 or response.json().get("error", {}).get("code") != 1005:
            raise violation(operation, "1005 on every write", response, "expected 403 with code 1005")
        if 'error="insufficient_scope"' not in response.headers.get("WWW-Authenticate", ""):
            raise violation(operation, "1005 on every write", response, 'no error="insufficient_scope" challenge')

