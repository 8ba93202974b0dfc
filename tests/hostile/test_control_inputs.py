"""Control-plane settings a careless or hostile client sends must leave the API working."""

from __future__ import annotations

import pytest

from mock_server.config import ConfigError, load_config
from tests.conftest import mint
from tests.support.live import CheckedSession


@pytest.mark.parametrize("refill", [5e-324, 1e-9, 0.0009])
def test_a_refill_rate_whose_retry_after_no_header_can_carry_is_refused(http: CheckedSession, refill: float) -> None:
    """5e-324 made Retry-After infinite: every API request then answered 500."""
    refused = http.put("/_mock/rate-limit", json={"capacity": 1, "refill_per_second": refill})
    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "refill_per_second"
    token = mint(http)
    assert http.get("/v1/account", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_the_slowest_refill_allowed_still_answers_429_with_a_finite_retry_after(http: CheckedSession) -> None:
    token = mint(http)
    assert http.put("/_mock/rate-limit", json={"capacity": 1, "refill_per_second": 0.001}).status_code == 200
    headers = {"Authorization": f"Bearer {token}"}
    assert http.get("/v1/account", headers=headers).status_code == 200
    refused = http.get("/v1/account", headers=headers)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) == 1000


@pytest.mark.parametrize("value", ["5e-324", "0", "nan"])
def test_the_config_refuses_such_a_refill_rate_naming_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match="rate_limit_per_second"):
        load_config(None, {}, rate_limit_per_second=float(value))
