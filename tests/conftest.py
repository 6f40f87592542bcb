"""Shared fixtures, and a summary of skipped tests so that a skip is never mistaken for a pass."""
from __future__ import annotations

import pytest

from conformance import syntax

pytest_plugins = ["pytester"]


@pytest.fixture
def parse():
    """Parse program text (dedented) into a Program."""
    import textwrap
    return lambda text: syntax.parse(textwrap.dedent(text))


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    terminalreporter.section(f"{len(skipped)} skipped (not counted as passed)")
    reasons: dict[str, int] = {}
    for rep in skipped:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, n in sorted(reasons.items()):
        terminalreporter.write_line(f"  {n} x {reason}")
