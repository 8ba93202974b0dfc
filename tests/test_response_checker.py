"""The response checker holds answers to the spec's headers: their schemas, and the ones marked required."""

from __future__ import annotations

import json

from mock_server.spec.document import SpecDocument
from mock_server.spec.responses import ResponseChecker

RATE = {"X-RateLimit-Limit": "120", "X-RateLimit-Remaining": "119", "X-RateLimit-Reset": "1"}
CLOCK = json.dumps({"timestamp": "2026-11-25T15:04:05Z", "is_open": True, "mode": "open", "next_open": None,
                    "next_close": None}).encode()


def check(spec: SpecDocument, headers: dict[str, str]) -> list[str]:
    operation = next(op for op in spec.operations if op.operation_id == "getMarketClock")
    return ResponseChecker(spec).problems(operation, 200, {"Content-Type": "application/json", **headers}, CLOCK)


def test_a_v1_answer_with_its_rate_limit_headers_conforms(tradefence_spec_document: SpecDocument) -> None:
    assert check(tradefence_spec_document, RATE) == []


def test_a_v1_answer_without_a_required_header_does_not(tradefence_spec_document: SpecDocument) -> None:
    problems = check(tradefence_spec_document, {k: v for k, v in RATE.items() if k != "X-RateLimit-Remaining"})
    assert problems == ["getMarketClock 200: required header X-RateLimit-Remaining is missing"]


def test_a_header_that_breaks_its_schema_does_not(tradefence_spec_document: SpecDocument) -> None:
    assert check(tradefence_spec_document, {**RATE, "X-RateLimit-Remaining": "-1"})
