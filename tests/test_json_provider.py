"""The app's JSON provider (orjson) says what Flask's own provider says, for every kind of value an answer holds."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from mock_server.web.json_provider import FastJSONProvider


class Side(StrEnum):
    BUY = "BUY"


@dataclass
class Point:
    x: int
    label: str


VALUES: list[Any] = [
    {"id": "ord_1", "price": 187.25, "quantity": 3, "fills": [], "filled_at": None, "ok": True},
    {"nested": {"list": [1, 2.5, "three", None], "tuple": (1, 2)}},
    {"text": "na\u00efve \u2013 \u00fcn\u00efcode \u2713", "quote": 'say "hi"\n'},
    {"side": Side.BUY},
    {"when": datetime(2026, 11, 25, 15, 4, 5, tzinfo=UTC), "day": date(2026, 11, 25)},
    {"money": Decimal("187.2500"), "uuid": uuid.UUID(int=7)},
    {"point": Point(1, "a")},
    {1: "an int key", "b": 2},
    {"big": 2**70, "small": -(2**70)},  # past 64 bits: orjson refuses, the standard library does not
    [],
    "plain",
    None,
]


@pytest.fixture
def app() -> Flask:
    return Flask("json-test")  # the providers hold it weakly: the fixture keeps it alive


def providers(app: Flask) -> tuple[FastJSONProvider, DefaultJSONProvider]:
    fast, default = FastJSONProvider(app), DefaultJSONProvider(app)
    fast.sort_keys = default.sort_keys = False
    app.json = fast
    return fast, default


@pytest.mark.parametrize("value", VALUES, ids=lambda value: type(value).__name__ + str(len(str(value))))
def test_the_same_json_as_flasks_provider(app: Flask, value: Any) -> None:
    fast, default = providers(app)
    assert json.loads(fast.dumps(value)) == json.loads(default.dumps(value))
    with app.app_context():
        answer = fast.response(value)
    assert answer.mimetype == "application/json"
    body = answer.get_data(as_text=True)
    assert body.endswith("\n") and "\n" not in body[:-1]  # compact, one line, as Flask's out of debug mode
    assert json.loads(body) == json.loads(default.dumps(value))


def test_sort_keys_is_honoured(app: Flask) -> None:
    fast, _ = providers(app)
    fast.sort_keys = True
    assert fast.dumps({"b": 1, "a": 2}) == '{"a":2,"b":1}'
    fast.sort_keys = False
    assert fast.dumps({"b": 1, "a": 2}) == '{"b":1,"a":2}'


def test_the_standard_librarys_options_are_still_available(app: Flask) -> None:
    fast, _ = providers(app)
    assert fast.dumps({"a": [1]}, indent=2) == '{\n  "a": [\n    1\n  ]\n}'


def test_debug_mode_answers_indented_json(app: Flask) -> None:
    fast, _ = providers(app)
    app.debug = True
    with app.app_context():
        body = fast.response({"a": 1}).get_data(as_text=True)
    assert body == '{\n  "a": 1\n}\n'
