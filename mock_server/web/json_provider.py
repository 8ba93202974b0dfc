"""Flask's JSON provider with orjson doing the encoding: every API answer is JSON, and `json.dumps` was a visible
part of every answer (docs/performance.md). The output means the same as Flask's own: values orjson would render
differently (datetimes, dataclasses) go through Flask's `default`, and what orjson refuses (an integer past 64
bits, say, in a journaled request body) falls back to the standard library rather than failing the request.
Non-ASCII text leaves as UTF-8 rather than as `\\u` escapes: the same JSON to any parser.
"""

from __future__ import annotations

from typing import Any, cast

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class FastJSONProvider(DefaultJSONProvider):
    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:  # someone asked for the standard library's knobs (indent, separators): theirs to have
            return super().dumps(obj, **kwargs)
        return self._encode(obj, 0).decode()

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        if self.compact is False or (self.compact is None and self._app.debug):
            return cast(Response, super().response(obj))  # indented, for a human reading it in debug mode
        # `_app` is typed as Flask's sans-I/O base, whose response class takes no body; a Flask app's takes one.
        response_class = cast(type[Response], self._app.response_class)
        return response_class(self._encode(obj, orjson.OPT_APPEND_NEWLINE), mimetype=self.mimetype)

    def _encode(self, obj: Any, option: int) -> bytes:
        try:
            sort = orjson.OPT_SORT_KEYS if self.sort_keys else 0
            return orjson.dumps(obj, default=self.default, option=_OPTIONS | sort | option)
        except orjson.JSONEncodeError:
            text = super().dumps(obj, separators=(",", ":"))
            return (text + "\n" if option & orjson.OPT_APPEND_NEWLINE else text).encode()
