"""The one engine for regular expressions that come from a client: RE2 (`google-re2`).

Python's `re` backtracks: `^/v1/(a+)+$` searched in a path of 29 a's and a `!` ran 12 s, doubling per character,
while the request held a worker. RE2 matches in time linear in the text and refuses what only a backtracking
engine can do (backreferences, lookaround), so a pattern costs at most one pass over the path it is searched in.
Its syntax: https://github.com/google/re2/wiki/Syntax.
"""

from __future__ import annotations

import re2

from mock_server.domain.patterns import PathPattern

# What one compiled pattern may hold (RE2's default is 8 MiB). The patterns are at most 256 characters (the spec's
# maxLength), which RE2 compiles in far less; the bound keeps what a client's patterns can make us hold small.
_MAX_MEMORY = 1 << 20


def compile_pattern(text: str) -> PathPattern:
    """RE2's compiled `text`, or ValueError saying why RE2 refuses it."""
    options = re2.Options()
    options.max_mem = _MAX_MEMORY
    options.log_errors = False  # a refused pattern is the client's 400, not a line on the emulator's stderr
    try:
        return re2.compile(text, options=options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "refused"
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise ValueError(f"not a regular expression RE2 takes ({reason}; RE2 has no backreferences or "
                         f"lookaround)") from None
