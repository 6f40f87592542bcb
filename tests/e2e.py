"""Helpers for end-to-end tests: targets that skip (or, where required, fail) when absent."""
from __future__ import annotations

import os

import pytest

from targets.runners import get

E2E_TARGETS = ("x86_64-native", "x86_64-qemu-user", "aarch64-qemu-user", "x86_64-linux-vm",
               "aarch64-linux-vm")


def required_targets() -> set[str]:
    """Targets that must run (CI sets CONFORMANCE_REQUIRE_TARGETS): absent ones fail, not skip."""
    return {n.strip() for n in os.environ.get("CONFORMANCE_REQUIRE_TARGETS", "").split(",") if n.strip()}


def runner_or_skip(name: str):
    """The runner, or a skip (a failure where required) saying why and how to enable it."""
    runner = get(name)
    why = runner.unavailable()
    if why:
        message = f"target {name} not available: {why} (enable: {runner.enable})"
        if name in required_targets():
            pytest.fail(message + " -- but CONFORMANCE_REQUIRE_TARGETS requires it")
        pytest.skip(message)
    return runner


def disagreements(report) -> list[str]:
    """Programs that neither agreed nor diverged in a documented way, in words."""
    from conformance.compare import AGREES
    from conformance.findings import KNOWN
    return [f"{v.program.name}: {v.status}: {v.detail}" for v in report.verdicts
            if v.status not in (AGREES, KNOWN)]


def assert_caught_exactly(report, must: set[str], baseline: set[str] | None = None):
    """The mutated run diverges in exactly `must` (among `baseline`, if given); returns the
    verdicts of those programs for further checks."""
    diverged = {line.split(":", 1)[0] for line in disagreements(report)}
    if baseline is not None:
        diverged &= baseline
    assert diverged == must, (f"missed: {sorted(must - diverged)}; "
                              f"unexpected: {sorted(diverged - must)}")
    return [v for v in report.verdicts if v.program.name in must]
