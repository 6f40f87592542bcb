"""Soak: many generated programs on every available target while runs are broken on purpose;
every program must end with a result or a named reason, none silently lost.

    python benchmarks/soak.py [--programs 10000] [--targets ...] [--seed 1] [--batch 100]

Faults rotate batch by batch, per target:
- none;
- die-after: the batch stops after its 5th program (a VM's init exits: a real kernel panic);
- console-garbage: noise and damaged records before every program;
- truncated: the runner's output is cut in the middle (a runner killed mid-batch);
- never-end (VM targets only): the VM never powers off and is cut short when silent;
- and every batch with a failure tries to write a reproducer bundle into a directory that
  refuses writes (a full disk), which must be reported, not crash the run.
A program that diverges or hangs of itself runs again, unbroken, to tell a deterministic
disagreement from a timing-sensitive or flaky one.
Batches overlap as many at a time as `conformance run` keeps on the target (its jobs).
Prints per target the accounting: programs, how many have a verdict, by verdict, the named
reasons of those that did not agree, and the count silently lost (must be 0).
"""
from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from conformance import bundle
from conformance.check import check, in_flight, stability
from conformance.compare import AGREES, DIVERGES, HUNG
from conformance.findings import KNOWN
from conformance.lower import NO_FAULTS, Faults
from generators import sample
from oracle import predict
from targets.runners import get, known
from targets.runners.base import Runner
from targets.runners.sandbox import RunResult


@dataclasses.dataclass(frozen=True)
class Truncating(Runner):
    """Another target whose output is cut in half: what a runner killed mid-batch leaves."""

    inner: Runner | None = None

    def unavailable(self):
        return self.inner.unavailable()

    def version(self):
        return self.inner.version() + " [output truncated by the soak]"

    def run(self, elf: bytes, timeout: float) -> RunResult:
        """Run on the inner target, then keep only the first half of what it printed."""
        result = self.inner.run(elf, timeout)
        return dataclasses.replace(result, output=result.output[:len(result.output) // 2],
                                   incident="the runner was killed mid-batch (soak fault)")


def truncating(runner: Runner) -> Truncating:
    """`runner` behind the truncating wrapper (same name, ABI and batch settings)."""
    return Truncating(runner.name, runner.abi_name, enable=runner.enable,
                      batch_ending=runner.batch_ending, contained=runner.contained,
                      batch_size=runner.batch_size, parallel=runner.parallel, inner=runner)


RERUNS = 3  # of each divergence, as is and with yields (conformance run: 5)


def faults_for(k: int, runner: Runner, chunk) -> tuple[str, Faults, Runner]:
    """The fault of the k-th batch on this target."""
    kinds = ["none", "die-after", "console-garbage", "truncated"]
    if runner.name.endswith("-linux-vm"):
        kinds.append("never-end")
    kind = kinds[k % len(kinds)]
    if kind == "die-after":
        return kind, Faults(die_after=chunk[min(4, len(chunk) - 1)].name), runner
    if kind == "console-garbage":
        return kind, Faults(console_garbage=True), runner
    if kind == "truncated":
        return kind, NO_FAULTS, truncating(runner)
    if kind == "never-end":
        impatient = dataclasses.replace(runner.config, silence_seconds=5.0)
        return kind, Faults(never_end=True), type(runner).from_config(impatient)
    return kind, NO_FAULTS, runner


def main(argv=None) -> int:
    """Run the soak; exit 1 if any program was silently lost."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", type=int, default=10000)
    ap.add_argument("--targets", help="default: every available target but the Breenix ones")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args(argv)
    runners = ([get(n) for n in args.targets.split(",")] if args.targets else
               [r for r in known() if "breenix" not in r.name and r.unavailable() is None])
    runners = [r for r in runners if r.unavailable() is None]
    start = time.monotonic()
    programs = sample(args.programs, seed=args.seed)
    expected = [predict(p) for p in programs]
    print(f"{len(programs)} programs drawn and predicted in {time.monotonic() - start:.0f} s; "
          f"targets: {', '.join(r.name for r in runners)}", flush=True)
    full_disk = Path(tempfile.mkdtemp(prefix="soak-full-"))
    lost_total = 0
    for runner in runners:
        verdicts, faults_seen, bundles = {}, Counter(), Counter()
        t0 = time.monotonic()
        starts = range(0, len(programs), args.batch)

        def soak_batch(k: int, first: int):
            chunk = programs[first:first + args.batch]
            kind, faults, target = faults_for(k, runner, chunk)
            # One batch per check: its fault is its own, and batches overlap as in a run.
            return k, first, kind, check(chunk, expected[first:first + args.batch], target,
                                         faults=faults, batch_size=args.batch, jobs=1)

        # As many batches in flight as `conformance run` keeps on this target.
        with ThreadPoolExecutor(max_workers=in_flight(runner)) as pool:
            futures = [pool.submit(soak_batch, k, first) for k, first in enumerate(starts)]
            for done, future in enumerate(as_completed(futures), 1):
                k, first, kind, report = future.result()
                faults_seen[kind] += 1
                for i, v in enumerate(report.verdicts):
                    verdicts[first + i] = v
                bad = [v for v in report.verdicts if v.status not in (AGREES, KNOWN)]
                if bad:
                    try:
                        with _disk_full():
                            bundle.write(bad[0].program, predict(bad[0].program),
                                         {runner.name: bad[0]}, full_disk / "bundles")
                        bundles["written"] += 1
                    except OSError as exc:
                        bundles[f"not written: {exc.strerror}"] += 1
                print(f"  {runner.name}: batch {k + 1} ({kind}): {len(report.verdicts)}/"
                      f"{min(args.batch, len(programs) - first)} verdicts "
                      f"[{done}/{len(futures)} batches]", file=sys.stderr, flush=True)
        # A program's own disagreements (not a fault's) run again, unbroken: does it repeat?
        for i in [i for i, v in verdicts.items() if v.status in (DIVERGES, HUNG)]:
            verdicts[i] = stability(verdicts[i], expected[i], runner, runner.abi, NO_FAULTS,
                                    RERUNS)
        lost = len(programs) - len(verdicts)
        lost_total += lost
        counts = Counter(v.status for v in verdicts.values())
        reasons = Counter(_reason(v) for v in verdicts.values() if v.status not in (AGREES, KNOWN))
        print(f"{runner.name}: {len(programs)} programs, {len(verdicts)} with a verdict, "
              f"{lost} silently lost; {dict(counts)}; batches by fault {dict(faults_seen)}; "
              f"bundles {dict(bundles) or 'none needed'}; {time.monotonic() - t0:.0f} s")
        for reason, n in reasons.most_common(8):
            print(f"    {n:5d}  {reason}")
    print(f"silently lost in all: {lost_total}")
    return 1 if lost_total else 0


def _disk_full():
    """Every file write fails with ENOSPC, as on a full disk (root ignores permissions, so a
    read-only directory would not do). Only bundles write through Path while other batches
    run: runners and builds do not."""
    from unittest import mock

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return mock.patch.multiple(Path, write_bytes=full, write_text=full)


def _reason(verdict) -> str:
    """The named reason a program did not agree, without program-specific numbers."""
    text = verdict.detail.split(": ", 1)[-1] if verdict.status != "diverges" else verdict.detail
    if verdict.stability:
        return f"{verdict.status} ({verdict.stability}): {text[:90]}"
    for marker in ("the runner was killed mid-batch", "the kernel died", "did not power off",
                   "never started", "malformed record", "bad checksum", "records missing"):
        if marker in verdict.detail:
            return f"{verdict.status}: {marker}"
    return f"{verdict.status}: {text[:90]}"


if __name__ == "__main__":
    from conformance.interrupt import stopping_on_interrupt
    try:
        with stopping_on_interrupt():  # Ctrl-C kills the batches in flight, not waits for them
            sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted")
