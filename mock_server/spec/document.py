"""Load openapi.yaml once and expose what the emulator derives from it: operations, schemas, examples."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jsonschema_rs

if TYPE_CHECKING:
    from referencing import Registry

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
LOCAL_SERVER_DESCRIPTION = "Local emulator"
SPEC_URI = "urn:tradefence:openapi"
OAUTH_SCHEME = "oauth2"
CONTROL_SCHEME = "controlToken"


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: str  # path | query | header
    required: bool
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Operation:
    """One (method, path) of the spec, with the URL the emulator serves it at."""

    operation_id: str
    method: str
    path: str  # as in the spec: /orders/{orderId}
    url_path: str  # as served by the emulator: /v1/orders/{orderId}
    parameters: tuple[Parameter, ...]
    body_content_type: str | None
    body_schema: dict[str, Any] | None
    body_required: bool
    scopes: tuple[str, ...]
    secured: bool  # needs an OAuth access token
    control: bool  # the control plane: needs the control token when the emulator listens beyond loopback
    tag: str
    source: str


class SpecDocument:
    """The parsed spec plus a JSON Schema registry in which `#/components/...` references resolve."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.raw = document
        self.rs_registry = jsonschema_rs.Registry([(SPEC_URI, document)])  # what the fast validators resolve in

    @cached_property
    def registry(self) -> Registry:
        """The same, for the Python jsonschema validators that explain failures (imported on the first one)."""
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        return Registry().with_resource(SPEC_URI, Resource.from_contents(self.raw, default_specification=DRAFT202012))

    @classmethod
    def load(cls, path: Path | None = None) -> SpecDocument:
        return cls(parse(path or resources.files("mock_server").joinpath("openapi.yaml")))

    @cached_property
    def operations(self) -> tuple[Operation, ...]:
        api_prefix = _local_prefix(self.raw["servers"])
        found = []
        for path, item in self.raw["paths"].items():
            prefix = _local_prefix(item["servers"]) if "servers" in item else api_prefix
            shared = item.get("parameters", [])
            for method in HTTP_METHODS:
                if method in item:
                    found.append(self._operation(path, method, item[method], shared, prefix))
        return tuple(found)

    def operation(self, operation_id: str) -> Operation:
        for op in self.operations:
            if op.operation_id == operation_id:
                return op
        raise KeyError(operation_id)

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """Follow a local `$ref` (one level at a time until none is left)."""
        while "$ref" in node:
            node = self.pointer(node["$ref"])
        return node

    def pointer(self, ref: str) -> Any:
        node: Any = self.raw
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def schema_ref(self, name: str) -> dict[str, Any]:
        """A schema that points into the spec, so it validates with this document's registry."""
        return {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}

    def response_spec(self, operation: Operation, status: int) -> dict[str, Any] | None:
        responses = self.pointer(f"#/paths/{_escape(operation.path)}/{operation.method.lower()}/responses")
        entry = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        return self.resolve(entry) if entry is not None else None

    def _operation(self, path: str, method: str, spec: dict[str, Any], shared: list[dict[str, Any]],
                   prefix: str) -> Operation:
        params = {(p["name"], p["in"]): p for p in map(self.resolve, [*shared, *spec.get("parameters", [])])}
        body = self.resolve(spec["requestBody"]) if "requestBody" in spec else None
        content_type, body_schema = next(iter(body["content"].items())) if body else (None, None)
        security = spec.get("security", self.raw.get("security", []))
        oauth = [requirement for requirement in security if OAUTH_SCHEME in requirement]
        return Operation(
            operation_id=spec["operationId"],
            method=method.upper(),
            path=path,
            url_path=prefix + path,
            parameters=tuple(
                Parameter(p["name"], p["in"], bool(p.get("required")), p.get("schema", {})) for p in params.values()
            ),
            body_content_type=content_type,
            body_schema=body_schema["schema"] if body_schema else None,
            body_required=bool(body and body.get("required")),
            scopes=tuple(scope for requirement in oauth for scope in requirement[OAUTH_SCHEME]),
            secured=bool(oauth),
            control=any(CONTROL_SCHEME in requirement for requirement in security),
            tag=spec.get("tags", ["untagged"])[0],
            source=spec.get("x-tradefence-source", "inferred"),
        )


def _local_prefix(servers: list[dict[str, Any]]) -> str:
    """The path part of the server marked as the local emulator: `/v1` for the API, `` for the auth host."""
    for server in servers:
        if server.get("description", "").startswith(LOCAL_SERVER_DESCRIPTION):
            return urlsplit(server["url"]).path.rstrip("/")
    raise ValueError("the spec names no local emulator server")


def _escape(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


def parse(source: Path | Traversable) -> dict[str, Any]:
    """The spec as data. Even libyaml is slow over a spec this size (it was the largest part of the emulator's cold
    start), so the parse is kept as JSON, read far faster, in `__pycache__` beside the spec, named by a hash of the
    text as Python names its bytecode: an edited spec never meets a stale copy. Nothing is written where Python
    would not write bytecode, nor when JSON cannot hold the parse exactly."""
    text = source.read_bytes()
    if not isinstance(source, Path):  # inside a zip, say: nowhere to keep a copy
        return _parse_yaml(text)
    cache = source.parent / "__pycache__"
    stem = f"{source.stem}.spec-"
    kept = cache / f"{stem}{hashlib.sha256(text).hexdigest()[:20]}.json"
    with contextlib.suppress(OSError, ValueError):
        return json.loads(kept.read_bytes())
    document = _parse_yaml(text)
    if not sys.dont_write_bytecode:
        with contextlib.suppress(OSError, TypeError, ValueError):
            copy = json.dumps(document)
            if json.loads(copy) == document:  # e.g. no integer keys that JSON would turn into strings
                cache.mkdir(exist_ok=True)
                for stale in cache.glob(f"{stem}*.json"):
                    stale.unlink(missing_ok=True)
                partial = kept.with_suffix(f".{os.getpid()}.tmp")
                partial.write_text(copy)
                partial.replace(kept)  # atomic: a concurrent reader sees all of it or nothing
    return document


def _parse_yaml(text: bytes) -> dict[str, Any]:
    import yaml  # only when the kept copy is missing: importing PyYAML is itself a part of a cold start worth saving

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
