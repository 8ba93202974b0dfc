"""The request journal without HTTP: bounded, masked, truncated, filtered newest first."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.domain.journal import MASK, MAX_BODY_CHARS, PATH_SEARCH_LIMIT, Journal, JournalFilter

NOW = datetime(2026, 11, 25, 15, tzinfo=UTC)


def record(journal: Journal, *, method: str = "GET", path: str = "/v1/account", status: int | None = 200,
           body: bytes = b"", content_type: str = "", query: list[tuple[str, str]] | None = None,
           headers: list[tuple[str, str]] | None = None, operation: str | None = "getAccount") -> None:
    journal.record(request_id=f"req_{len(journal)}", timestamp=NOW, method=method, path=path, query=query or [],
                   headers=headers or [], body=body, content_type=content_type, status=status,
                   operation=operation, duration_ms=1.23456)


def test_bounded_the_oldest_go_first() -> None:
    journal = Journal(3)
    for index in range(5):
        record(journal, path=f"/v1/orders/{index}")
    assert [entry.path for entry in journal.entries()] == ["/v1/orders/4", "/v1/orders/3", "/v1/orders/2"]


def test_capacity_zero_turns_it_off() -> None:
    journal = Journal(0)
    record(journal)
    assert len(journal) == 0 and journal.entries() == []


def test_secrets_are_masked_in_headers_query_form_and_json() -> None:
    journal = Journal(10)
    record(journal, headers=[("Authorization", "Bearer eyJhbGciOi"), ("Cookie", "session=abc"),
                             ("Content-Type", "application/json")],
           query=[("access_token", "tok"), ("symbol", "AAPL")], content_type="application/json",
           body=json.dumps({"nested": {"refresh_token": "rt_1", "keep": 1}, "items": [{"secret": "whsec_x"}]}).encode())
    record(journal, method="POST", path="/token", content_type="application/x-www-form-urlencoded",
           body=b"grant_type=authorization_code&code=ac_1&code_verifier=v&client_id=c&client_secret=s")
    form, json_entry = journal.entries()
    assert form.body == {"grant_type": "authorization_code", "code": MASK, "code_verifier": MASK,
                         "client_id": "c", "client_secret": MASK}
    assert json_entry.headers["Authorization"] == "Bearer ***" and json_entry.headers["Cookie"] == MASK
    assert json_entry.query == {"access_token": [MASK], "symbol": ["AAPL"]}
    assert json_entry.body == {"nested": {"refresh_token": MASK, "keep": 1}, "items": [{"secret": MASK}]}


def test_large_bodies_are_cut_after_masking() -> None:
    journal = Journal(10)
    body = json.dumps({"client_secret": "s" * 10, "pad": "x" * (MAX_BODY_CHARS * 2)}).encode()
    record(journal, method="POST", content_type="application/json", body=body)
    entry = journal.entries()[0]
    assert entry.body_truncated and len(entry.body) == MAX_BODY_CHARS
    assert "s" * 10 not in entry.body and MASK in entry.body


def test_other_bodies_are_text_and_bad_json_stays_text() -> None:
    journal = Journal(10)
    record(journal, method="POST", content_type="application/json", body=b"{not json")
    record(journal, method="POST", content_type="text/plain", body=b"hello")
    assert [entry.body for entry in journal.entries()] == ["hello", "{not json"]


def test_filters_combine_and_limit_counts_matches() -> None:
    journal = Journal(50)
    for index in range(6):
        record(journal, method="POST" if index % 2 else "GET", path=f"/v1/orders/{index}",
               status=429 if index >= 4 else 201, operation="createOrder" if index % 2 else "getOrder")
    posts = journal.entries(JournalFilter(method="post"))
    assert [entry.path for entry in posts] == ["/v1/orders/5", "/v1/orders/3", "/v1/orders/1"]
    assert [e.path for e in journal.entries(JournalFilter(status=429, operation="getOrder"))] == ["/v1/orders/4"]
    assert len(journal.entries(JournalFilter(path=re.compile(r"/[0-3]$"), limit=2))) == 2
    assert journal.clear() == 6 and journal.entries() == []


@settings(max_examples=150, deadline=None)
@given(capacity=st.integers(1, 12),
       requests=st.lists(st.tuples(st.sampled_from(["GET", "POST", "delete"]), st.sampled_from(["/a", "/b/1", "/c"]),
                                   st.sampled_from([200, 201, 404, None]), st.sampled_from(["one", "two", None])),
                         max_size=40),
       method=st.none() | st.sampled_from(["GET", "post", "DELETE", "PUT"]),
       path=st.none() | st.sampled_from(["^/b", "a"]),
       status=st.none() | st.sampled_from([200, 404]), operation=st.none() | st.sampled_from(["one", "three"]),
       limit=st.integers(1, 15))
def test_filters_find_what_a_scan_of_the_kept_requests_finds(
        capacity: int, requests: list[tuple[str, str, int | None, str | None]], method: str | None, path: str | None,
        status: int | None, operation: str | None, limit: int) -> None:
    journal = Journal(capacity)
    for verb, where, answered, named in requests:
        record(journal, method=verb, path=where, status=answered, operation=named)
    wanted = JournalFilter(method=method, path=None if path is None else re.compile(path), operation=operation,
                           status=status, limit=limit)
    kept = [(verb.upper(), where, answered, named) for verb, where, answered, named in requests][-capacity:]
    expected = [request for request in reversed(kept)
                if (method is None or request[0] == method.upper()) and (path is None or re.search(path, request[1]))
                and (status is None or request[2] == status) and (operation is None or request[3] == operation)]
    found = [(entry.method, entry.path, entry.status, entry.operation) for entry in journal.entries(wanted)]
    assert found == expected[:limit]
    assert len(journal) == len(kept)


def test_a_path_pattern_searches_the_newest_requests_only() -> None:
    journal = Journal(PATH_SEARCH_LIMIT + 10)
    record(journal, path="/v1/orders/needle", method="DELETE")
    for _ in range(PATH_SEARCH_LIMIT):
        record(journal, path="/v1/account")
    assert journal.entries(JournalFilter(path=re.compile("needle"))) == []  # past the bound: not searched
    assert journal.entries(JournalFilter(method="DELETE", path=re.compile("needle")))[0].path == "/v1/orders/needle"
