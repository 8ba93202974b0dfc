"""openapi.yaml is a valid OpenAPI 3.1 document that Redocly lints clean, with provenance, examples and scopes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "openapi.yaml"
REDOCLY = ROOT / "node_modules" / ".bin" / "redocly"
SPEC_URI = "urn:tradefence:openapi"

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SOURCES = {"documented", "inferred", "emulator"}
SCOPED_PREFIXES = ("/orders", "/positions", "/account", "/market", "/ai", "/batch")

SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]


def _operations(path_items: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, item[method]) for path, item in path_items.items() for method in HTTP_METHODS if method in item
    ]


PATH_OPERATIONS = _operations(SPEC["paths"])
WEBHOOK_OPERATIONS = _operations(SPEC.get("webhooks", {}))


def _op_id(entry: tuple[str, str, dict[str, Any]]) -> str:
    path, method, _ = entry
    return f"{method.upper()} {path}"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def test_spec_passes_openapi_spec_validator() -> None:
    validate(SPEC)


def test_redocly_lint_passes() -> None:
    if not REDOCLY.exists():
        pytest.skip("Redocly CLI not installed: run `make lint` (npm ci)")
    env = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true", "NO_COLOR": "1"}
    result = subprocess.run(
        [str(REDOCLY), "lint", "openapi.yaml", "--format=stylish"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"redocly lint failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("entry", PATH_OPERATIONS + WEBHOOK_OPERATIONS, ids=_op_id)
def test_operation_has_provenance(entry: tuple[str, str, dict[str, Any]]) -> None:
    _, _, operation = entry
    assert operation.get("x-tradefence-source") in SOURCES


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_has_provenance(name: str) -> None:
    assert SCHEMAS[name].get("x-tradefence-source") in SOURCES


def test_there_are_webhooks() -> None:
    assert WEBHOOK_OPERATIONS, "the spec declares no webhook operation"


@pytest.fixture(scope="module")
def registry() -> Registry:
    resource = Resource.from_contents(SPEC, default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_examples_validate(name: str, registry: Registry) -> None:
    schema = SCHEMAS[name]
    Draft202012Validator.check_schema(schema)
    examples = schema.get("examples")
    assert isinstance(examples, list), f"{name} has no `examples` list"
    assert examples, f"{name} has an empty `examples` list"
    validator = Draft202012Validator(
        {"$ref": f"{SPEC_URI}#/components/schemas/{name}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    for index, example in enumerate(examples):
        errors = [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(example)
        ]
        assert not errors, f"{name} example {index} is invalid: " + "; ".join(errors)


SCOPED_OPERATIONS = [entry for entry in PATH_OPERATIONS if any(_under(entry[0], p) for p in SCOPED_PREFIXES)]


def test_every_scoped_prefix_has_operations() -> None:
    for prefix in SCOPED_PREFIXES:
        assert any(_under(path, prefix) for path, _, _ in SCOPED_OPERATIONS), f"no operation under {prefix}"


@pytest.mark.parametrize("entry", SCOPED_OPERATIONS, ids=_op_id)
def test_operation_names_a_scope(entry: tuple[str, str, dict[str, Any]]) -> None:
    _, _, operation = entry
    requirements = operation.get("security", SPEC.get("security"))
    assert requirements, "no security requirement: the operation would be public"
    schemes = SPEC["components"]["securitySchemes"]
    for requirement in requirements:
        assert requirement, "an empty requirement `{}` makes the operation public"
        for scheme_name, scopes in requirement.items():
            assert scheme_name in schemes, f"unknown security scheme {scheme_name}"
            assert scopes, f"requirement on {scheme_name} names no scope"
            declared = {
                scope for flow in schemes[scheme_name].get("flows", {}).values() for scope in flow.get("scopes", {})
            }
            assert set(scopes) <= declared, f"undeclared scopes {set(scopes) - declared}"


def _escape(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _inline_examples(node: object, pointer: str = "") -> list[tuple[str, list[Any]]]:
    """Every schema in the document with an `examples` list (in OpenAPI 3.1 only a Schema has a list there)."""
    found: list[tuple[str, list[Any]]] = []
    if isinstance(node, dict):
        if isinstance(node.get("examples"), list):
            found.append((pointer, node["examples"]))
        for key, value in node.items():
            if key not in ("examples", "example") and not str(key).startswith("x-"):
                found += _inline_examples(value, f"{pointer}/{_escape(key)}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _inline_examples(value, f"{pointer}/{index}")
    return found


def test_every_inline_example_validates(registry: Registry) -> None:
    found = _inline_examples(SPEC)
    assert len(found) > len(SCHEMAS), "the walk found fewer schemas with examples than components/schemas has"
    problems = []
    for pointer, examples in found:
        validator = Draft202012Validator(
            {"$ref": f"{SPEC_URI}#{pointer}"}, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        problems += [
            f"{pointer}: {example!r}: {e.message}" for example in examples for e in validator.iter_errors(example)
        ]
    assert not problems, "\n".join(problems)
