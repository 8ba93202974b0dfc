"""Everything README.md shows a user works: its shell snippets run (in order, as a reader would paste them) against
a live emulator, its Python snippets run, its TOML is a valid config, its relative links and the files it names
exist, every endpoint it names is in the spec, and its error table is the spec's.

A fenced block preceded by `<!-- not run: why -->` is left out (it starts a long-running server).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from standardwebhooks import Webhook

from mock_server.config import load_config
from mock_server.domain.errors import ErrorCode
from mock_server.spec.document import SpecDocument

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = (README, ROOT / "docs" / "performance.md", ROOT / "benchmarks" / "README.md", ROOT / "ARCHITECTURE.md")
DOCUMENTED_URL = "http://127.0.0.1:8080"
BLOCK = re.compile(r"(?P<marker><!-- not run: [^>]+ -->\n)?```(?P<lang>\w+)\n(?P<body>.*?)\n```", re.S)


def blocks(lang: str) -> list[str]:
    return [m["body"] for m in BLOCK.finditer(README.read_text()) if m["lang"] == lang and not m["marker"]]


def test_the_readme_shows_both_commands_and_stays_short() -> None:
    text = README.read_text()
    assert "make mock-up" in text and "make test" in text
    assert len(text.splitlines()) < 350


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's shell snippets need curl")
def test_the_shell_snippets_run_in_order_against_an_emulator(base_url: str, tmp_path: Path) -> None:
    snippets = blocks("sh")
    assert len(snippets) >= 5
    # Any 4xx or 5xx fails the script, as does any failing command or pipe.
    script = ["set -euo pipefail", 'curl() { command curl --fail-with-body --max-time 10 "$@"; }']
    for number, snippet in enumerate(snippets, 1):
        script += [f"echo '--- snippet {number}' >&2", snippet.replace(DOCUMENTED_URL, base_url), "echo"]
    (tmp_path / "readme.sh").write_text("\n".join(script) + "\n")
    result = subprocess.run(["bash", str(tmp_path / "readme.sh")], capture_output=True, text=True, timeout=60,
                            check=False, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert not re.search(r'"error":\s*\{', result.stdout), result.stdout[-3000:]
    assert re.search(r'"id":\s*"ord_\w+"', result.stdout), result.stdout[-2000:]


def test_the_authlib_snippet_places_an_order(base_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    (snippet,) = [s for s in blocks("python") if "OAuth2Session" in s]
    exec(snippet.replace(DOCUMENTED_URL, base_url), {})
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"201 FILLED \d+\.\d+", lines[0]), lines
    assert "'cash'" in lines[1], lines


def test_the_webhook_receiver_accepts_a_signed_event_and_refuses_a_forged_one() -> None:
    (snippet,) = [s for s in blocks("python") if "standardwebhooks" in s]
    namespace: dict[str, object] = {"__name__": "readme_receiver"}
    exec(snippet, namespace)
    app = namespace["app"]
    assert isinstance(app, Flask)
    secret = re.search(r'Webhook\("(whsec_[^"]+)"\)', snippet)[1]  # type: ignore[index]
    body = json.dumps({"id": "evt_1", "type": "order.filled", "data": {}}).encode()
    now = datetime.fromtimestamp(int(time.time()), UTC)
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(int(now.timestamp()))}
    headers["webhook-signature"] = Webhook(secret).sign("evt_1", now, body.decode())
    client = app.test_client()
    assert client.post("/webhooks", data=body, headers=headers).status_code == 204
    forged = Webhook(base64.b64encode(b"another key, 24 bytes!!!").decode()).sign("evt_1", now, body.decode())
    assert client.post("/webhooks", data=body, headers={**headers, "webhook-signature": forged}).status_code == 400


def test_the_toml_example_is_a_valid_config(tmp_path: Path) -> None:
    (example,) = blocks("toml")
    path = tmp_path / "tradefence.toml"
    path.write_text(example)
    config = load_config(path)
    assert config.seed == tomllib.loads(example)["seed"]


def test_every_endpoint_named_is_in_the_spec(tradefence_spec_document: SpecDocument) -> None:
    served = {(op.method.upper(), re.sub(r"\{\w+\}", "{}", op.url_path)) for op in tradefence_spec_document.operations}
    for doc in (README, ROOT / "ARCHITECTURE.md"):
        named = re.findall(r"\b(GET|POST|PUT|PATCH|DELETE) (/[\w/{}.-]*)", doc.read_text())
        assert named or doc != README
        for method, path in named:
            assert (method, re.sub(r"\{\w+\}", "{}", path)) in served, f"{doc.name}: {method} {path}"


def test_every_relative_link_and_named_file_exists() -> None:
    for doc in DOCS:
        text = doc.read_text()
        links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
        named = re.findall(r"`((?:mock_server|contracts|tests|examples|benchmarks|docs|\.github)/[\w./-]*)`", text)
        for target in links:
            if "://" not in target:
                assert (doc.parent / target).exists(), f"{doc.name} links to {target}"
        for target in named:
            assert (ROOT / target.rstrip("/")).exists() or "*" in target, f"{doc.name} names {target}"


def test_the_error_table_is_the_spec_table() -> None:
    rows = re.findall(r"^\| (\d{4}(?: / \d{4})?) \| (\d{3}(?: / \d{3})?) \|.*?\| (\d{4}(?: / \d{4})?) \| "
                      r"(\d{3}(?: / \d{3})?) \|", README.read_text(), re.M)
    table: dict[int, int] = {}
    for row in rows:
        for codes, statuses in (row[:2], row[2:]):
            for code, status in zip(codes.split(" / "), statuses.split(" / "), strict=True):
                table[int(code)] = int(status)
    assert table == {code.value: code.status for code in ErrorCode}
