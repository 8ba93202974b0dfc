"""`Allow` tells the truth on every route: it lists exactly the methods the spec gives that path, and each of them
reaches that path's own operation (never 405, never a sibling route whose parameter happens to match)."""

from __future__ import annotations

import re

import requests
from flask import Flask

from mock_server.spec.document import SpecDocument
from tests.support.live import CheckedSession

STREAM = "/market-data"  # the websocket route beside the spec's operations


def _example(document: SpecDocument, template: str, name: str) -> str:
    for operation in document.operations:
        if operation.url_path == template:
            for parameter in operation.parameters:
                if parameter.name == name and parameter.schema.get("examples"):
                    return str(parameter.schema["examples"][0])
    return "x"


def _allow(response: requests.Response) -> set[str]:
    return {method.strip() for method in response.headers.get("Allow", "").split(",") if method.strip()}


def test_allow_lists_exactly_the_spec_methods_of_every_path_and_each_reaches_its_operation(
        app: Flask, http: CheckedSession, base_url: str) -> None:
    document: SpecDocument = app.extensions["tradefence.spec"]
    api = app.extensions["tradefence.api"]
    templates: dict[str, set[str]] = {}
    for operation in document.operations:
        templates.setdefault(operation.url_path, set()).add(operation.method)
    adapter = app.url_map.bind("localhost")
    walked = set()
    for rule in app.url_map.iter_rules():
        template = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        path = re.sub(r"\{(\w+)\}", lambda found, template=template: _example(document, template, found.group(1)),
                      template)
        if template == STREAM:  # plain HTTP, whatever the method it allows, is a 400: it is not an upgrade
            answer = http.post(path)
            assert answer.status_code == 405
            assert _allow(answer) == {"GET", "HEAD", "OPTIONS"}
            for method in ("GET", "HEAD", "OPTIONS"):
                assert requests.request(method, base_url + path, timeout=10).status_code == 400, method
            walked.add(template)
            continue
        expected = templates[template] | ({"HEAD"} if "GET" in templates[template] else set())
        answer = http.options(path)
        assert answer.status_code == 405, (path, answer.status_code)
        assert _allow(answer) == expected, f"{path}: Allow {answer.headers.get('Allow')}, the spec {expected}"
        for method in sorted(expected):
            # A HEAD answer has no body for the spec check to read: its status is what counts here.
            sent = requests.head(base_url + path, timeout=10) if method == "HEAD" else http.request(method, path)
            assert sent.status_code != 405, (method, path)
            endpoint, _ = adapter.match(path, method=method)
            assert api.operation_for(endpoint).url_path == template, (method, path, endpoint)
        walked.add(template)
    assert walked == set(templates) | {STREAM}  # every route, and no route the spec does not have


def test_the_overlap_that_lied(base_url: str) -> None:
    """`/_mock/webhooks/deliveries` is also a match for `/_mock/webhooks/{endpointId}`; its DELETE is not offered.
    (Plain requests: the spec-checking session, too, files a DELETE there under `{endpointId}`.)"""
    answer = requests.delete(f"{base_url}/_mock/webhooks/deliveries", timeout=10)
    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == 4005
    assert _allow(answer) == {"GET", "HEAD"}
