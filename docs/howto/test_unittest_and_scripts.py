"""How to use the emulator without pytest fixtures: `mock_server.testing.sandbox()` is a context manager.

For unittest, start one per class and reset it in `setUp` (a reset is much cheaper than a new emulator). In a
script, `with sandbox() as tf:` around the code. Keyword arguments override `Config` (`seed=`, `market_mode=`,
`starting_cash=`, ...).
"""

import unittest
from decimal import Decimal

import requests

from mock_server.testing import Sandbox, sandbox


class OrderTests(unittest.TestCase):
    tf: Sandbox

    @classmethod
    def setUpClass(cls) -> None:
        cls.tf = cls.enterClassContext(sandbox(seed=7, starting_cash=Decimal(5000)))

    def setUp(self) -> None:
        self.tf.reset()

    def test_a_new_account_has_the_configured_cash(self) -> None:
        account = requests.get(f"{self.tf.api_url}/account", headers=self.tf.headers("carol"), timeout=10).json()
        self.assertEqual(account["cash"], 5000)

    def test_the_same_seed_gives_the_same_prices(self) -> None:
        self.tf.clock.freeze()
        first = requests.get(f"{self.tf.api_url}/market/quotes/AAPL", headers=self.tf.headers(), timeout=10).json()
        self.tf.reset()
        self.tf.clock.freeze(at=first["timestamp"])
        again = requests.get(f"{self.tf.api_url}/market/quotes/AAPL", headers=self.tf.headers(), timeout=10).json()
        self.assertEqual((first["bid"], first["ask"]), (again["bid"], again["ask"]))


def test_a_script_can_use_it_too() -> None:
    with sandbox() as tf:
        quote = requests.get(f"{tf.api_url}/market/quotes/MSFT", headers=tf.headers(), timeout=10)
        assert quote.status_code == 200
