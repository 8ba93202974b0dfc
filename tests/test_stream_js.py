"""The integration guide's JavaScript client (`examples/stream.js`, Node's `ws`) against the live emulator."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "stream.js"


def test_the_guides_javascript_client_streams_from_the_emulator(base_url: str) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript example needs Node.js >= 20")
    if not (ROOT / "node_modules" / "ws" / "package.json").exists():
        pytest.skip("Node's `ws` package is missing: run `npm ci` (`make test` does)")
    env = {**os.environ, "TRADEFENCE_STREAM_URL": base_url.replace("http://", "ws://") + "/market-data",
           "TRADEFENCE_STREAM_MESSAGES": "8"}
    result = subprocess.run([node, str(EXAMPLE)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    types = re.findall(r"type: '(\w+)'", result.stdout)  # console.log prints objects the Node way
    assert len(types) == 8, result.stdout
    assert types[0] == "subscription" and types.count("quote") >= 3
    assert "symbols: [ 'AAPL', 'GOOGL', 'MSFT' ]" in result.stdout
    assert re.findall(r"seq: (\d+)", result.stdout) == [str(n) for n in range(1, 9)]
