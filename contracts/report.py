"""The drift report people read (`--contract-report PATH`, and `$GITHUB_STEP_SUMMARY` when set): Markdown, per
operation — the check, what was expected and what came back, a reproducer — then what the run could not check
(not drift), what it skipped and why, and what it did on the account.

Findings come from the exceptions of failed tests: the suite's own `ContractViolation`s, schemathesis's check
failures, and the run's own refusals (a spent wait budget, unusable credentials), which are kept apart from drift.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from contracts.checking import ContractViolation

REPRODUCER = re.compile(r"^\s*(curl .+)$", re.MULTILINE)
RESPONSE = re.compile(r"^\s*\[(\d{3})\][^\n]*:\s*\n\s*\n\s*`(.*)`\s*$", re.MULTILINE)  # schemathesis's "[500] ...:"
NOT_DRIFT = ("WaitBudgetExhausted", "TokenOutlived", "UnsafeRequest", "Failed")


@dataclass(frozen=True)
class Finding:
    test: str
    operation: str
    check: str
    expected: str
    actual: str = ""
    reproducer: str = ""
    drift: bool = True


def findings(exception: BaseException, test: str, name: Callable[[str], str] = str) -> list[Finding]:
    """What a failed test's exception says, one finding per broken check. `name` turns schemathesis's operation
    label (`POST /orders`) into the spec's operationId."""
    found: list[Finding] = []
    for error, group_message in _leaves(exception, ""):
        if isinstance(error, ContractViolation):
            found.append(Finding(test, error.operation, error.check, error.expected, error.actual,
                                 error.reproducer))
        elif hasattr(error, "operation") and hasattr(error, "title") and hasattr(error, "message"):
            # a schemathesis check failure; its group's message holds the response and the reproducer
            reproducer, response = REPRODUCER.search(group_message), RESPONSE.search(group_message)
            found.append(Finding(test, name(str(getattr(error, "operation", None) or "?")),
                                 f"{getattr(error, 'code', '')} {error.title}".strip(),
                                 " ".join(str(error.message).split()) or str(error.title),
                                 f"{response.group(1)}: {response.group(2)}" if response else "",
                                 reproducer.group(1) if reproducer else ""))
        else:
            kind = type(error).__name__
            text = str(error).strip() or kind
            operation = text[1:text.index("]")] if text.startswith("[") and "]" in text else "—"
            found.append(Finding(test, operation, kind, text.splitlines()[0][:500], "\n".join(
                text.splitlines()[1:])[:1500], drift=kind not in NOT_DRIFT and isinstance(error, AssertionError)))
    return found


def _leaves(error: BaseException, message: str) -> Iterator[tuple[BaseException, str]]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner, str(error))
    else:
        yield error, message


def render(*, title: str, facts: list[tuple[str, str]], found: Iterable[Finding], outcomes: Counter[str],
           skips: Counter[str]) -> str:
    found = list(dict.fromkeys(found))  # a failure Hypothesis reports twice is one finding
    drift = [f for f in found if f.drift]
    other = [f for f in found if not f.drift]
    operations = sorted({f.operation for f in drift})
    lines = [f"# {title}", ""]
    verdict = (f"**Drift: {len(drift)} finding{'s' * (len(drift) != 1)} in {len(operations)} "
               f"operation{'s' * (len(operations) != 1)}.**" if drift else "**No drift found.**")
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
    lines += [f"{verdict} Tests: {counts or 'none ran'}.", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {_cell(value)} |" for name, value in facts]
    if drift:
        lines += ["", "## Drift, by operation", ""]
        for operation in operations:
            lines += [f"### `{operation}`", ""]
            for finding in (f for f in drift if f.operation == operation):
                lines += [f"- **{finding.check}** (`{finding.test}`)", f"  - expected: {finding.expected}"]
                if finding.actual:
                    lines += ["  - actual:", "", "    ```", *[f"    {line}" for line in
                                                             finding.actual.splitlines()[:20]], "    ```"]
                if finding.reproducer:
                    lines += ["  - reproduce:", "", "    ```sh", f"    {finding.reproducer}", "    ```"]
            lines.append("")
    if other:
        lines += ["", "## The run could not check (not drift)", ""]
        lines += [f"- **{f.check}** (`{f.test}`): {f.expected}" for f in dict.fromkeys(other)]
    if skips:
        lines += ["", "## Skipped", ""]
        lines += [f"- {reason} ({count} test{'s' * (count != 1)})" for reason, count in skips.most_common()]
    return "\n".join(lines).rstrip() + "\n"


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", "<br>")
