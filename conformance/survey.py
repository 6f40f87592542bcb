"""Many programs on several targets at once: agreement rates, causes, and who differs from whom.

A survey checks one fixed list of programs (a corpus, or a `generators.sample`) on every
target in large batches, then:
- groups the disagreements with the oracle into causes (target, verdict, call where the
  outcome first parts), each with a shrunk example program;
- compares the targets with each other: for each program where the targets did not all see
  the same outcome, which targets saw which, and what that suggests (`classify`): only the
  emulator differs -> emulator limitation; the real kernels agree with each other and not the
  oracle -> oracle error; ISAs differ on real kernels -> architecture difference.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from conformance.check import DEFAULT_JOBS, FLAKY, TIMING_SENSITIVE, TargetReport, check
from conformance.compare import AGREES, Verdict
from conformance.events import Expected
from conformance.findings import KNOWN
from conformance.ir import Program
from conformance.lower import NO_FAULTS, Faults
from targets.runners import Runner

REAL_KERNEL_SUFFIXES = ("-native", "-linux-vm")  # a Linux kernel executes the syscalls


@dataclass
class Cause:
    """Disagreements of one target that part from the oracle at the same call, the same way."""

    target: str
    status: str
    call: str
    verdicts: list[Verdict] = field(default_factory=list)
    shrunk: Program | None = None
    shrunk_verdict: Verdict | None = None
    shrink_seconds: float = 0.0

    @property
    def example(self) -> Verdict:
        """The first program that showed the cause."""
        return self.verdicts[0]


@dataclass
class Split:
    """A program on which the targets did not all see the same thing."""

    program: Program
    groups: list[tuple[tuple[str, ...], str]]  # (targets, their verdict status) per outcome
    verdict: str                               # what the split suggests


@dataclass
class Survey:
    """What a survey found."""

    programs: list[Program]
    reports: list[TargetReport]
    causes: list[Cause]
    splits: list[Split]
    seconds: float


def _where(v: Verdict) -> str:
    """What a disagreement is grouped by: the documented finding, or the call where it parts."""
    if v.status == KNOWN:
        found = re.search(r"known \(([^)]+)\)", v.detail)
        return found.group(1) if found else "-"
    return v.difference.op_text.split("(")[0] if v.difference and v.difference.op_text else "-"


def causes(reports: Sequence[TargetReport]) -> list[Cause]:
    """Every disagreement grouped by (target, status, call at the difference); documented ones
    (known limitations) by their finding instead of the call."""
    out: dict[tuple[str, str, str], Cause] = {}
    for report in reports:
        for v in report.verdicts:
            if v.status == AGREES:
                continue
            key = (report.target, v.status, _where(v))
            out.setdefault(key, Cause(*key)).verdicts.append(v)
    return sorted(out.values(), key=lambda c: (c.status == KNOWN, c.target, -len(c.verdicts)))


def cross_isa(programs: Sequence[Program], reports: Sequence[TargetReport]
              ) -> list[tuple[str, str, list[Program]]]:
    """For each pair of real-kernel targets of different ISAs: the programs they saw differently."""
    real = [r for r in reports if _is_real(r.target)]
    out = []
    for k, a in enumerate(real):
        for b in real[k + 1:]:
            if _isa(a.target) != _isa(b.target):
                differ = [p for p, va, vb in zip(programs, a.verdicts, b.verdicts)
                          if _seen(va) != _seen(vb)]
                out.append((a.target, b.target, differ))
    return out


def _seen(v: Verdict) -> tuple:
    """What a target saw, comparable across targets: agreeing targets saw the one allowed
    outcome (measured times may differ within its bounds); the others are told apart by
    where and how they part from it."""
    if v.status == AGREES:
        return (AGREES,)
    return (v.status, v.difference.describe() if v.difference else v.detail)


def _is_real(target: str) -> bool:
    return target.endswith(REAL_KERNEL_SUFFIXES)


def _isa(target: str) -> str:
    return target.split("-", 1)[0]


def classify(groups: list[tuple[tuple[str, ...], str]], unstable: Sequence[str] = ()) -> str:
    """What a split suggests, from which targets agree with the oracle and with each other;
    `unstable`: the targets whose divergence did not come back on every rerun."""
    if unstable:
        return (f"timing-sensitive or flaky on {', '.join(unstable)} (reruns gave other "
                "results): a program whose outcome depends on timing, not an architecture "
                "difference until it reproduces")
    agreeing = [t for targets, status in groups if status == AGREES for t in targets]
    others = [(targets, status) for targets, status in groups if status != AGREES]
    if not others:
        return "outcomes differ, each one the oracle allows"
    dissent = [t for targets, _ in others for t in targets]
    real_dissent = [t for t in dissent if _is_real(t)]
    documented = all(status == KNOWN for _, status in others)
    if not real_dissent:
        return ("emulator limitation" + (", documented" if documented else "")
                + " (every real kernel agrees with the oracle)" if any(map(_is_real, agreeing))
                else "emulator limitation or oracle error (no real kernel ran it)")
    real_agreeing = [t for t in agreeing if _is_real(t)]
    if real_agreeing:
        if {_isa(t) for t in real_dissent} & {_isa(t) for t in real_agreeing}:
            return "kernels of the same ISA differ (kernel version or timing)"
        return "architecture difference between real kernels"
    if len({targets for targets, _ in others if any(map(_is_real, targets))}) == 1:
        return "oracle error or unmodelled kernel behaviour (the real kernels agree with each other)"
    return "oracle error or unmodelled kernel behaviour (the real kernels disagree with each other too)"


def splits(programs: Sequence[Program], reports: Sequence[TargetReport]) -> list[Split]:
    """Programs on which some target disagreed with the oracle, grouped by what each saw."""
    out = []
    for i, program in enumerate(programs):
        seen: dict[object, list[str]] = {}
        status: dict[object, str] = {}
        unstable = []
        for report in reports:
            v = report.verdicts[i]
            if v.stability in (TIMING_SENSITIVE, FLAKY):
                unstable.append(report.target)
            key = _seen(v)
            seen.setdefault(key, []).append(report.target)
            status[key] = v.status
        groups = [(tuple(t), status[k]) for k, t in seen.items()]
        if len(groups) > 1 or groups[0][1] != AGREES:
            out.append(Split(program, groups, classify(groups, unstable)))
    return out


def shrink(cause: Cause, runner: Runner, predict: Callable[[Program], Expected], *,
           watchdog_ms: int, faults: Faults = NO_FAULTS) -> None:
    """Shrink the cause's example on its target, keeping the same status at the same call
    (or the same documented finding)."""
    from conformance.explore import minimise
    start = time.monotonic()
    last: dict[str, Verdict] = {}

    def still_fails(candidate: Program) -> bool:
        v = check([candidate], [predict(candidate)], runner, watchdog_ms=watchdog_ms,
                  faults=faults).verdicts[0]
        if v.status != cause.status or _where(v) != cause.call:
            return False
        last["v"] = v
        return True

    cause.shrunk = minimise(cause.example.program, still_fails)
    cause.shrunk_verdict = last.get("v", cause.example)
    cause.shrink_seconds = time.monotonic() - start


def survey(programs: Sequence[Program], expected: Sequence[Expected], runners: Sequence[Runner],
           *, batch_size: int = 100, watchdog_ms: int = 2000, reruns: int = 0,
           faults: Faults = NO_FAULTS, shrink_causes: bool = True,
           predict: Callable[[Program], Expected] | None = None,
           progress: Callable[[str, int, int, int, float], None] | None = None,
           jobs: int | None = None, lanes: int | None = None) -> Survey:
    """Check `programs` on every runner, then group causes (shrunk) and cross-target splits."""
    start = time.monotonic()
    reports = []
    for runner in runners:
        def report_progress(done, total, bad, name=runner.name, t0=time.monotonic()):
            if progress:
                progress(name, done, total, bad, time.monotonic() - t0)
        reports.append(check(programs, expected, runner, batch_size=batch_size,
                             watchdog_ms=watchdog_ms, progress=report_progress, reruns=reruns,
                             faults=faults, jobs=jobs, lanes=lanes))
    found = causes(reports)
    if shrink_causes and predict is not None:
        by_name = {r.name: r for r in runners}
        for cause in found:
            shrink(cause, by_name[cause.target], predict, watchdog_ms=watchdog_ms, faults=faults)
    return Survey(list(programs), reports, found, splits(programs, reports) if len(reports) > 1
                  else [], time.monotonic() - start)
