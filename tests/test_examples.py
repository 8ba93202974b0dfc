"""The examples run, unchanged, against a live emulator (the server `make mock-up` starts, here on a free port).

`examples/python_client.py` is the whole integration in Python; `examples/docs_snippets.js` is the integration
guide's JavaScript. Each is run as a user would run it, with the base URL as its argument, and must exit 0.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ORDER_ID = r"ord_[0-9A-Z]{26}"


def run(command: list[str]) -> str:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def test_the_python_client_runs_every_step(base_url: str) -> None:
    out = run([sys.executable, str(EXAMPLES / "python_client.py"), base_url])

    assert re.search(r"^authorized as example-py-[0-9a-f]{8}: Bearer token, scope 'trading:read trading:write'",
                     out, re.M), out
    order_id = re.search(rf"^order ({ORDER_ID}) placed: BUY 10 AAPL MARKET$", out, re.M)
    assert order_id, out
    assert re.search(rf"^order {order_id[1]} status FILLED: 10 filled at \d+\.\d+$", out, re.M), out
    assert re.search(r"^recommendation (AAPL|MSFT): (BUY|SELL|HOLD) ", out, re.M), out
    assert "batch: 3 succeeded, 0 failed (CREATE_ORDER 201, UPDATE_POSITION 200, CANCEL_ORDER 200)" in out
    assert len(re.findall(r"^tick (AAPL|MSFT) (quote bid \S+ ask \S+|trade \S+ x \d+) \(seq \d+\)$", out, re.M)) == 4
    assert re.search(rf"^webhook order\.filled evt_\w+: signature verified, order {order_id[1]} FILLED at ", out,
                     re.M), out
    assert out.rstrip().endswith("done: every step succeeded")


def test_the_python_client_reads_the_base_url_from_the_environment(base_url: str) -> None:
    result = subprocess.run([sys.executable, str(EXAMPLES / "python_client.py")], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False,
                            env={**os.environ, "TRADEFENCE_BASE_URL": base_url})
    assert result.returncode == 0, result.stderr
    assert "done: every step succeeded" in result.stdout


def test_the_guides_javascript_snippets_run(base_url: str) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: examples/docs_snippets.js needs Node.js >= 20 (global fetch)")
    if not (ROOT / "node_modules" / "ws" / "package.json").exists():
        pytest.skip("Node's `ws` package is missing: run `npm ci` (`make test` does)")
    out = run([node, str(EXAMPLES / "docs_snippets.js"), base_url])

    assert "authorized: Bearer token, scope 'trading:read trading:write'" in out
    placed = re.search(rf"^placeOrder -> ({ORDER_ID}) (OPEN|FILLED) \(BUY 100 AAPL LIMIT at 150\.5\)$", out, re.M)
    assert placed, out
    assert re.search(rf"^getOrderStatus -> {placed[1]} (OPEN|FILLED), \d+ filled$", out, re.M), out
    assert re.search(r"^getAIRecommendations -> AAPL (BUY|SELL|HOLD) ", out, re.M), out
    assert "batchUpdate -> 2 succeeded, 0 failed: CREATE_ORDER 201, UPDATE_POSITION 200" in out
    assert "batchUpdate -> 1 succeeded, 0 failed: CANCEL_ORDER 200" in out
    assert "symbols: [ 'AAPL', 'GOOGL', 'MSFT' ]" in out  # the guide's console.log of the acknowledgement
    assert len(re.findall(r"type: '(quote|trade)'", out)) == 6
    assert out.rstrip().endswith("stream -> 7 messages")

