"""Where the time goes: milliseconds per generated program in each stage of checking.

    python benchmarks/stages.py [--programs 200] [--target x86_64-native] [--lanes 1]

Stages, each timed alone over the same programs (seed 0, family all): draw (Hypothesis,
with the oracle's guard that every drawn program has one outcome), oracle, lower, emit (listing), assemble (keystone), run (one batch ELF of them all, on
`--target` with `--lanes`), parse, judge. Also prints the distribution of each program's
own run time (one program per batch), which shows what the programs wait on. Each stage's
CPU (this process's and its children's: the run's is the target's processes', on a VM the
boot included) adds up to the ceiling that CPU puts on any schedule: programs/s if every
core did nothing else. A drawn program's prediction is the guard's, kept (generators.prediction),
so the drawn-and-checked ceiling leaves the oracle stage out; a pre-drawn one counts it.
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
from conformance.batch import RUNTIME_AT, build, code_start, rodata_after
from conformance.check import batch_timeout
from conformance.compare import judge
from conformance.emit import emitter_for
from conformance.lanes import busy, plan
from conformance.lower import NO_FAULTS, lower_driver, lower_program
from conformance.runtime import runtime_for
from generators import sample
from oracle import predict
from targets.runners import get


def cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and its finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + usage.ru_utime + usage.ru_stime


def timed(costs: dict, stage: str, fn):
    """fn(), with its (wall seconds, CPU seconds) put in costs[stage]."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    out = fn()
    costs[stage] = (time.perf_counter() - t0, cpu_seconds() - c0)
    return out


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
    programs = timed(costs, "draw", lambda: sample(n, family="all", max_ops=20, seed=0))
    n = len(programs)
    expected = timed(costs, "oracle", lambda: [predict(p) for p in programs])
    # The runtime routines are assembled once per ABI and reused by every batch.
    runtime = runtime_for(abi, address=RUNTIME_AT)
    rodata = rodata_after(runtime)

    def lower():
        micro = lower_driver(n, abi, 2000, rodata=rodata, lanes=plan(programs, args.lanes))
        for i, p in enumerate(programs):
            micro += lower_program(p, i, abi, rodata, NO_FAULTS)
        return micro

    micro = timed(costs, "lower", lower)
    listing = timed(costs, "emit",
                    lambda: emitter_for(abi, NO_FAULTS, runtime.routines).render(micro))
    _ = timed(costs, "assemble", lambda: assemble(listing, abi, code_start(rodata)))
    elf = build(programs, abi, ending=runner.batch_ending, lanes=args.lanes).elf
    result = timed(costs, "run", lambda: runner.run(elf, batch_timeout(n, 2000)))
    parsed = timed(costs, "parse", lambda: trace.parse(result.output))
    _ = timed(costs, "judge", lambda: [
        judge(p, k, parsed.program(k), expected[k], abi, parsed.driver_pid, parsed.handlers)
        for k, p in enumerate(programs)])
    spinners = sum(1 for p in programs if busy(p))
    print(f"{n} programs on {runner.name}, one batch, {args.lanes} lane(s); {spinners} "
          "busy-wait:")
    for stage, (seconds, cpu) in costs.items():
        print(f"  {stage:9} {1000 * seconds / n:8.2f} ms/program, {1000 * cpu / n:6.2f} ms of CPU")
    per_program = {stage: 1000 * cpu / n for stage, (_, cpu) in costs.items()}
    checking_ms = sum(ms for stage, ms in per_program.items() if stage not in ("draw", "oracle"))
    cpu_ms = per_program["draw"] + checking_ms  # the guard already predicted each one
    drawn_ms = per_program["oracle"] + checking_ms
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
