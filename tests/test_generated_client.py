"""A client generated from openapi.yaml with openapi-python-client's default settings (the standard Python generator)
builds without an error or a warning, keeps every schema, and places and reads an order against an emulator.

The spec is what gets fixed for this, never the tool's configuration: one spelling per enum value, and event schemas
that state their own `type` rather than narrowing a base's (a generator cannot combine an enum with a constant and
drops the schema).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mock_server.testing import sandbox

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "tradefence_api_client"

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openapi_python_client") is None,
                                reason="openapi-python-client is not installed (pip install -e '.[dev]')")


def test_the_generated_client_places_and_reads_an_order(tmp_path: Path) -> None:
    # Its default post-generation hooks run ruff (a dev dependency), found on PATH next to this interpreter.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([sys.executable, "-m", "openapi_python_client", "generate", "--path",
                             str(ROOT / "openapi.yaml"), "--meta", "none"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower() and "error" not in output.lower(), output
    models = {path.stem for path in (tmp_path / PACKAGE / "models").glob("*.py")}
    assert {"order_filled_event", "position_closed_event", "alert_triggered_event"} <= models

    sys.path.insert(0, str(tmp_path))
    try:
        client_module = importlib.import_module(f"{PACKAGE}.client")
        create_order = importlib.import_module(f"{PACKAGE}.api.orders.create_order")
        get_order = importlib.import_module(f"{PACKAGE}.api.orders.get_order")
        list_orders = importlib.import_module(f"{PACKAGE}.api.orders.list_orders")
        generated = importlib.import_module(f"{PACKAGE}.models")
        with sandbox() as tf, client_module.AuthenticatedClient(base_url=tf.api_url, token=tf.token("gen")) as api:
            request = generated.OrderRequest(symbol="AAPL", type_=generated.OrderType.MARKET,
                                             side=generated.OrderSide.BUY, quantity=3)
            placed = create_order.sync(client=api, body=request)
            assert isinstance(placed, generated.Order), placed
            read = get_order.sync(client=api, order_id=placed.id)
            assert isinstance(read, generated.Order)
            assert (read.id, read.status, read.filled_quantity) == (placed.id, generated.OrderStatus.FILLED, 3)
            listed = list_orders.sync(client=api, status=generated.ListOrdersStatus.FILLED)
            assert [order.id for order in listed.data] == [placed.id]
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]
