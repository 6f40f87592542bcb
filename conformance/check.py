"""Check programs on a target: batch them, run the batches, parse, judge against the oracle."""
from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Sequence

from conformance import trace as trace_mod
from conformance.batch import DEFAULT_WATCHDOG_MS, BatchTooLarge, build
from conformance.compare import AGREES, CRASHED, TARGET_ERROR, Verdict, judge
from conformance.events import Expected
from conformance.findings import KNOWN, explain
from conformance.ir import Program
from conformance.lower import NO_FAULTS, Faults
from targets.runners import Runner
from targets.runners.sandbox import namespace_unavailable, unsafe_without_namespace
from targets.tables import Abi

REFUSED = "refused"
DEFAULT_BATCH = 100
DEFAULT_RERUNS = 5
DEFAULT_JOBS = 2 * (os.cpu_count() or 1)  # batches in flight: they mostly wait on timers
DETERMINISTIC, TIMING_SENSITIVE, FLAKY = "deterministic", "timing-sensitive", "flaky"


@dataclass
class TargetReport:
    """Every verdict of one target, plus how the target ran."""

    target: str
    version: str
    verdicts: list[Verdict] = field(default_factory=list)
    runs: int = 0
    seconds: float = 0.0
    boot_seconds: float = 0.0   # VMs: the part of `seconds` spent booting
    wall_seconds: float = 0.0   # start to end; less than `seconds` when batches overlap
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Verdict status -> number of programs."""
        out: dict[str, int] = {}
        for v in self.verdicts:
            out[v.status] = out.get(v.status, 0) + 1
        return out


def batch_timeout(count: int, watchdog_ms: int) -> float:
    """The outer watchdog of a batch: generous, because the inner one does the real work."""
    return 30.0 + count * watchdog_ms / 1000.0 * 2


def in_flight(runner: Runner, jobs: int | None = None) -> int:
    """Batches of `runner` to keep running at once: `jobs`, else the runner's own, else
    DEFAULT_JOBS; always 1 for a runner that is not `parallel`."""
    return max(1, jobs or runner.jobs or DEFAULT_JOBS) if runner.parallel else 1


def batch_split(count: int, size: int, jobs: int) -> int:
    """The batch size for `count` programs on a target that starts cheaply: at most `size`,
    and small enough that each of `jobs` batches in flight gets some (a short run still uses
    every core)."""
    return max(1, min(size, -(-count // max(jobs, 1))))


def check(programs: Sequence[Program], expected: Sequence[Expected], runner: Runner, *,
          batch_size: int = DEFAULT_BATCH, watchdog_ms: int = DEFAULT_WATCHDOG_MS,
          progress: Callable[[int, int, int], None] | None = None,
          abi: Abi | None = None, faults: Faults = NO_FAULTS, reruns: int = 0,
          jobs: int | None = None, lanes: int | None = None) -> TargetReport:
    """Run `programs` on `runner` and judge each against `expected` (same order).

    `abi` replaces the runner's own table for emitting and normalising, and `faults` plants
    bugs in the emitted code (both for mutation tests). With `reruns`, every program that does
    not agree runs again that many times as it is and that many times with a sched_yield
    before each op, and its verdict says how stable the result is. Up to `jobs` batches
    run at once (default: the runner's own `jobs`, else DEFAULT_JOBS; 1 for a runner that is
    not `parallel`), each running up to `lanes` programs at once (default: the runner's own
    `lanes`).
    """
    abi = abi or runner.abi
    lanes = lanes or runner.lanes
    started = time.monotonic()
    report = TargetReport(runner.name, runner.version())
    verdicts: dict[int, Verdict] = {}
    runnable: list[int] = []
    no_ns = None if runner.contained else namespace_unavailable()
    for i in range(len(programs)):
        # (programs[i] only when needed: a lazy sequence would wait for every program here)
        reason = unsafe_without_namespace(programs[i]) if no_ns else None
        if reason:
            verdicts[i] = Verdict(programs[i], i, REFUSED, f"not run: {reason}, and this host has "
                                  f"no pid namespace to contain it ({no_ns})")
        else:
            runnable.append(i)
    if no_ns:
        report.notes.append(f"no namespace sandbox ({no_ns}): programs that could signal "
                            "foreign processes are refused")
    done = len(verdicts)
    slots = in_flight(runner, jobs)
    # A target with its own batch size pays for each batch (a VM boots): as few batches as
    # keep every job busy, none larger than its size.
    size = batch_split(len(runnable), runner.batch_size or batch_size, slots)
    queue = [runnable[k:k + size] for k in range(0, len(runnable), size)]

    def run_batch(chunk: list[int]):
        try:
            batch = build([programs[i] for i in chunk], abi, watchdog_ms=watchdog_ms,
                          faults=faults, ending=runner.batch_ending, lanes=lanes)
        except BatchTooLarge:
            if len(chunk) == 1:
                raise
            return None  # the caller runs it as two batches
        return runner.run(batch.elf, batch_timeout(len(chunk), watchdog_ms))

    # Batches run in threads: a runner is a child process (or a VM) that mostly waits on
    # its programs' timers, so several in flight use the cores that one leaves idle, and
    # building batch k+1 overlaps running batch k. Results are judged here, in one thread.
    with ThreadPoolExecutor(max_workers=slots) as pool:
        pending = {}
        while queue or pending:
            while queue and len(pending) < slots:
                chunk = queue.pop(0)
                pending[pool.submit(run_batch, chunk)] = chunk
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                chunk = pending.pop(future)
                result = future.result()
                if result is None:
                    half = len(chunk) // 2
                    queue[:0] = [chunk[:half], chunk[half:]]
                    continue
                report.runs += 1
                report.seconds += result.seconds
                report.boot_seconds += result.boot_seconds or 0.0
                done += _judge_batch(chunk, result, programs, expected, runner, abi, report,
                                     verdicts, queue)
            if progress:
                bad = sum(1 for v in verdicts.values() if v.status not in (AGREES, KNOWN))
                progress(done, len(programs), bad)
    if reruns:
        for i, verdict in verdicts.items():
            if verdict.status not in (AGREES, KNOWN, REFUSED):
                verdicts[i] = stability(verdict, expected[i], runner, abi, faults, reruns,
                                         watchdog_ms)
    report.verdicts = [verdicts[i] for i in range(len(programs))]
    report.wall_seconds = time.monotonic() - started
    return report


def _judge_batch(chunk: list[int], result, programs, expected, runner: Runner, abi: Abi,
                 report: TargetReport, verdicts: dict[int, Verdict], queue: list) -> int:
    """Judge one finished batch into `verdicts`; programs it never started go back on
    `queue` for a fresh run. Returns how many programs got a verdict."""
    parsed = trace_mod.parse(result.output)
    report.notes += [f"batch {report.runs}: {p}" for p in parsed.problems]
    rest = _unstarted(chunk, parsed)
    ended = _ending(result) or (rest and "the batch ended before it started every program")
    if rest and len(rest) < len(chunk):
        # The run died part-way (a panic, a hung VM): what never started gets a fresh run.
        report.notes.append(f"batch {report.runs}: {ended}; {len(rest)} programs that had "
                            "not started run again in a new batch")
        queue.insert(0, rest)
    elif ended and not rest:
        report.notes.append(f"batch {report.runs}: {ended}; every program had finished")
    judged = 0
    for k, i in enumerate(chunk):
        if i in rest and len(rest) < len(chunk):
            continue
        verdict = judge(programs[i], i, parsed.program(k), expected[i], abi,
                        parsed.driver_pid, parsed.handlers)
        if verdict.status in (CRASHED, TARGET_ERROR) and ended:
            verdict = Verdict(verdict.program, i, verdict.status,
                              f"{verdict.detail}; {ended}", verdict.difference,
                              verdict.observed, verdict.problems)
        verdicts[i] = explain(verdict, runner.name, expected[i])
        judged += 1
    return judged


def stability(verdict: Verdict, expected: Expected, runner: Runner, abi: Abi, faults: Faults,
              reruns: int, watchdog_ms: int = DEFAULT_WATCHDOG_MS) -> Verdict:
    """The verdict with how often it comes back, as is and with perturbed timing."""
    import dataclasses
    counts = []
    for variant in (faults, dataclasses.replace(faults, yield_between_ops=True)):
        failed = 0
        for _ in range(reruns):
            again = check([verdict.program], [expected], runner, abi=abi, faults=variant,
                          watchdog_ms=watchdog_ms)
            failed += again.verdicts[0].status not in (AGREES, KNOWN)
        counts.append(failed)
    plain, shaken = counts
    if plain == reruns and shaken == reruns:
        kind = DETERMINISTIC
    elif plain in (0, reruns) and shaken in (0, reruns):
        kind = TIMING_SENSITIVE  # always one way as is, always the other when shaken
    else:
        kind = FLAKY
    note = f"{plain}/{reruns} reruns as is, {shaken}/{reruns} with yields: {kind}"
    return dataclasses.replace(verdict, detail=f"{verdict.detail} [{note}]", stability=kind)


def _unstarted(chunk: list[int], parsed) -> list[int]:
    """The programs of a batch whose process 0 was never started."""
    return [i for k, i in enumerate(chunk) if not parsed.program(k).started]


def _ending(result) -> str:
    """How a batch ended, when that explains missing results."""
    if result.incident:
        return result.incident
    if result.timed_out:
        return f"the batch was killed by the outer watchdog after {result.seconds:.1f} s"
    if result.returncode not in (0, None):
        tail = result.stderr.strip().splitlines()[-1:] if result.stderr.strip() else []
        return f"the batch exited with status {result.returncode}" + (f": {tail[0]}" if tail else "")
    return ""
