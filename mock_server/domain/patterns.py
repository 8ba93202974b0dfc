"""Patterns a client supplies (the journal's and the faults' `path`): what the domain needs of one.

The domain only searches paths with them; which engine compiles them is decided outside it (RE2, in
`mock_server/re2_patterns.py`), because Python's own `re` backtracks and a client could make one search run for
minutes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class PathPattern(Protocol):
    def search(self, text: str) -> object | None: ...


PatternCompiler = Callable[[str], PathPattern]
"""Compiles a client's pattern; raises ValueError, whose message says what is wrong, for one it cannot take."""
