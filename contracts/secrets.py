"""The secrets a run holds — access and refresh tokens, the client secret — and how they are shown instead.

Every secret the suite is given or receives (each `/token` answer is observed) is registered here; every text the
suite lets out (failure reports, captured output, the drift report, the run summary) passes through `mask`, which
writes the shell variable a reproducer would use (`$TOKEN`, `$REFRESH_TOKEN`, `$CLIENT_SECRET`), so a curl line
stays runnable and nothing is disclosed.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote, quote_plus

SHORTEST = 8  # shorter values would mask ordinary words; real secrets are far longer
# Runs of the characters tokens are made of; a repr cut short (`eyJhbGci...Tec34k`) is one run with `...` inside.
TOKENISH = re.compile(r"[A-Za-z0-9_\-.~+/=]{8,}")


class Secrets:
    def __init__(self) -> None:
        self._shown_as: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, value: str | None, shown_as: str) -> None:
        if not value or len(value) < SHORTEST:
            return
        with self._lock:
            for form in {value, quote(value, safe=""), quote_plus(value)}:
                self._shown_as.setdefault(form, shown_as)

    def mask(self, text: str) -> str:
        """Every secret, and every piece of one that a shortened repr left (a prefix, a suffix), shown as its
        variable."""
        with self._lock:
            pairs = sorted(self._shown_as.items(), key=lambda pair: -len(pair[0]))
        for value, shown_as in pairs:
            if value in text:
                text = text.replace(value, shown_as)

        def piece(match: re.Match[str]) -> str:
            run = match.group(0)
            for value, shown_as in pairs:
                if any(len(part) >= SHORTEST and part in value for part in run.split("...")):
                    return shown_as
            return run

        return TOKENISH.sub(piece, text) if pairs else text

    def __contains__(self, value: str) -> bool:
        with self._lock:
            return value in self._shown_as

    def __repr__(self) -> str:
        return f"<Secrets: {len(self._shown_as)} masked>"
