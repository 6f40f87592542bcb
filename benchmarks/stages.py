"""Where the time goes: milliseconds per generated program in each stage of checking.

    python benchmarks/stages.py [--programs 200] [--target x86_64-native] [--lanes 1]

Stages, each timed alone over the same programs (seed 0, family all): draw (Hypothesis),
oracle, lower, emit (listing), assemble (keystone), run (one batch ELF of them all, on
`--target` with `--lanes`), parse, judge. Also prints the distribution of each program's
own run time (one program per batch), which shows what the programs wait on, and the CPU
the run's processes used (and how many programs busy-wait). From those it prints the ceiling
that CPU puts on any schedule: every stage's CPU per program, shared out over the cores (on
a VM target the run's CPU includes the boot).
Nothing is asserted: wall-clock figures depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

from conformance import trace
from conformance.assemble import assemble
from conformance.batch import IMAGE_BASE, build
from conformance.check import batch_timeout
from conformance.compare import judge
from conformance.elf import HEADER_SIZE
from conformance.emit import emitter_for
from conformance.lanes import busy, plan
from conformance.lower import NO_FAULTS, Rodata, lower_driver, lower_program
from generators import sample
from oracle import predict
from targets.runners import get


def timed(fn):
    """(seconds, fn())."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def children_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    """Measure and print (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", type=int, default=200)
    ap.add_argument("--target", default="x86_64-native")
    ap.add_argument("--lanes", type=int, default=1)
    args = ap.parse_args()
    runner = get(args.target)
    why = runner.unavailable()
    if why:
        raise SystemExit(f"{args.target}: not run ({why}; enable: {runner.enable})")
    abi, n = runner.abi, args.programs
    costs = {}
    costs["draw"], programs = timed(lambda: sample(n, family="all", max_ops=20, seed=0))
    n = len(programs)
    costs["oracle"], expected = timed(lambda: [predict(p) for p in programs])
    rodata = Rodata(base=IMAGE_BASE + HEADER_SIZE)

    def lower():
        micro = lower_driver(n, abi, 2000, rodata=rodata, lanes=plan(programs, args.lanes))
        for i, p in enumerate(programs):
            micro += lower_program(p, i, abi, rodata, NO_FAULTS)
        return micro

    costs["lower"], micro = timed(lower)
    costs["emit"], listing = timed(lambda: emitter_for(abi, NO_FAULTS).render(micro))
    costs["assemble"], _ = timed(lambda: assemble(listing, abi, IMAGE_BASE + 0x1000))
    elf = build(programs, abi, ending=runner.batch_ending, lanes=args.lanes).elf
    cpu_before = children_cpu()
    costs["run"], result = timed(lambda: runner.run(elf, batch_timeout(n, 2000)))
    run_cpu = children_cpu() - cpu_before
    costs["parse"], parsed = timed(lambda: trace.parse(result.output))
    costs["judge"], _ = timed(lambda: [
        judge(p, k, parsed.program(k), expected[k], abi, parsed.driver_pid, parsed.handlers)
        for k, p in enumerate(programs)])
    print(f"{n} programs on {runner.name}, one batch, {args.lanes} lane(s):")
    for stage, seconds in costs.items():
        print(f"  {stage:9} {1000 * seconds / n:8.2f} ms/program")
    spinners = sum(1 for p in programs if busy(p))
    print(f"  run CPU   {1000 * run_cpu / n:8.2f} ms/program (the target's processes; "
          f"{spinners} of {n} programs busy-wait)")
    # Every stage but the run is this process's CPU; the run's is its children's.
    cpu_ms = 1000 * (sum(v for k, v in costs.items() if k != "run") + run_cpu) / n
    drawn_ms = cpu_ms - 1000 * costs["draw"] / n
    cores = os.cpu_count() or 1
    print(f"CPU ceiling on {cores} cores: {1000 * cores / cpu_ms:.0f} programs/s drawn and "
          f"checked ({cpu_ms:.2f} ms of CPU each), {1000 * cores / drawn_ms:.0f}/s "
          f"checked when drawn beforehand ({drawn_ms:.2f} ms)")
    alone = sorted(1000 * runner.run(build([p], abi, ending=runner.batch_ending).elf, 30).seconds
                   for p in programs)
    quantiles = statistics.quantiles(alone, n=10)
    print(f"one program per batch, run ms: p10 {quantiles[0]:.1f}, median "
          f"{statistics.median(alone):.1f}, p90 {quantiles[-1]:.1f}, mean "
          f"{statistics.mean(alone):.1f}")


if __name__ == "__main__":
    main()
