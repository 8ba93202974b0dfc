"""Loading the spec fast: the parse kept beside it as JSON, and the libraries a valid request never needs left
unimported until something needs them (both are most of the cold start)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mock_server.spec import document
from mock_server.spec.document import SpecDocument, parse

SPEC = Path(document.__file__).resolve().parents[2] / "openapi.yaml"


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    copy = tmp_path / "openapi.yaml"
    copy.write_bytes(SPEC.read_bytes())
    return copy


def kept(spec: Path) -> list[Path]:
    return sorted((spec.parent / "__pycache__").glob("openapi.spec-*.json"))


def test_the_parse_is_kept_and_read_back_instead_of_the_yaml(spec: Path) -> None:
    parsed = parse(spec)
    (copy,) = kept(spec)
    assert json.loads(copy.read_text()) == parsed
    copy.write_text(json.dumps({**parsed, "info": {"title": "from the kept copy"}}))
    assert parse(spec)["info"] == {"title": "from the kept copy"}  # read, not parsed again


def test_an_edited_spec_is_parsed_again_and_the_stale_copy_goes(spec: Path) -> None:
    parse(spec)
    (old,) = kept(spec)
    spec.write_text(spec.read_text().replace("title: ", "title: Edited ", 1))
    assert parse(spec)["info"]["title"].startswith("Edited ")
    (new,) = kept(spec)
    assert new != old and not old.exists()


def test_nothing_is_kept_where_python_keeps_no_bytecode(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert parse(spec)["openapi"].startswith("3.1")
    assert kept(spec) == []


def test_a_parse_json_cannot_hold_exactly_is_not_kept(spec: Path) -> None:
    spec.write_text("openapi: 3.1.0\npaths:\n  200: integer key\n")
    assert parse(spec)["paths"] == {200: "integer key"}
    assert kept(spec) == []


def test_the_kept_copy_reads_back_as_the_yaml_itself(spec: Path) -> None:
    import yaml

    parse(spec)  # keeps the copy
    assert SpecDocument(parse(spec)).raw == yaml.safe_load(SPEC.read_text())


def test_starting_the_emulator_imports_neither_the_explaining_validator_nor_the_http_client() -> None:
    """jsonschema with its `referencing` (explains invalid input) and requests (delivers webhooks) load on first
    use; a fresh process creating the app must not pull them in."""
    probe = ("import sys; from mock_server.app import create_app; from mock_server.config import load_config; "
             "create_app(load_config(None, {})); "
             "print(sorted(m for m in ('jsonschema', 'requests', 'referencing') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stderr
