"""What a client registers is bounded: every API request is matched against each active fault, and every webhook
event goes to each registered endpoint (a delivery lane and its thread per endpoint). 3,000 faults made a
`GET /v1/account` 35 times slower; 2,000 endpoints made one market order cost 400 ms."""

from __future__ import annotations

from mock_server.domain.faults import MAX_FAULTS
from mock_server.domain.webhooks.endpoints import MAX_REGISTERED
from tests.support.live import CheckedSession


def test_at_most_max_faults_are_active_at_once(http: CheckedSession) -> None:
    ids = []
    for index in range(MAX_FAULTS):
        created = http.post("/_mock/faults", json={"path": f"^/v1/never/{index}$", "latency_ms": 1})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    refused = http.post("/_mock/faults", json={"path": "^/v1/one-more$", "latency_ms": 1})
    assert refused.status_code == 400
    assert f"At most {MAX_FAULTS} faults" in refused.json()["error"]["message"]
    assert http.delete(f"/_mock/faults/{ids[0]}").status_code == 200
    assert http.post("/_mock/faults", json={"path": "^/v1/one-more$", "latency_ms": 1}).status_code == 201


def test_at_most_max_registered_webhook_endpoints_at_once(http: CheckedSession) -> None:
    ids = []
    for index in range(MAX_REGISTERED):
        created = http.post("/_mock/webhooks", json={"url": f"http://127.0.0.1:9/hook/{index}"})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    refused = http.post("/_mock/webhooks", json={"url": "http://127.0.0.1:9/one-more"})
    assert refused.status_code == 400
    assert f"At most {MAX_REGISTERED} webhook endpoints" in refused.json()["error"]["message"]
    assert http.delete(f"/_mock/webhooks/{ids[0]}").status_code == 200
    assert http.post("/_mock/webhooks", json={"url": "http://127.0.0.1:9/one-more"}).status_code == 201
