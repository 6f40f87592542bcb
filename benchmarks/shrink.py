"""Shrinking on a real failure: plant a bug, let generated programs find it, measure the shrink.

    python benchmarks/shrink.py [--target aarch64-qemu-user] [--fault corrupt-saved-register=x19]
                                [--family registers] [--seeds 1-10]

For each seed: generated programs run on the target with the fault planted in the emitted code
(a handler that overwrites one saved register: a sigreturn that forgets to restore it) until
one diverges; Hypothesis shrinks the batch and the program, then the deletion pass. Prints per
seed the ops before and after, the time from the first failure to the final program (and its
two parts), and a summary against the goal (<= 3 ops in <= 30 s). Nothing is asserted.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from conformance.cli import parse_faults
from conformance.explore import explore
from conformance.syntax import format as format_program
from targets.runners import get


def seeds(text: str) -> list[int]:
    """`1-10` or `1,4,7` as a list of ints."""
    if "-" in text:
        low, high = text.split("-", 1)
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",") if s]


def main(argv=None) -> None:
    """Run the shrink benchmark and print one line per seed and a summary."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", default="aarch64-qemu-user")
    ap.add_argument("--fault", default="corrupt-saved-register=x19")
    ap.add_argument("--family", default="registers")
    ap.add_argument("--max-ops", type=int, default=20)
    ap.add_argument("--seeds", default="1-10")
    args = ap.parse_args(argv)
    runner = get(args.target)
    if runner.unavailable():
        sys.exit(f"{args.target}: not available ({runner.unavailable()})")
    rows = []
    print(f"{args.target}, fault {args.fault}, family {args.family}, at most {args.max_ops} ops")
    for seed in seeds(args.seeds):
        t0 = time.monotonic()
        result = explore([runner], count=500, family=args.family, max_ops=args.max_ops,
                         profile="ci", seed=seed, faults=parse_faults(args.fault))
        f = result.failure
        if f is None:
            print(f"seed {seed}: no failure found in {result.programs} programs")
            continue
        rows.append((f.ops_before, f.ops_after, f.shrink_seconds))
        last = format_program(f.program).strip().splitlines()[-1]
        print(f"seed {seed}: {f.ops_before} -> {f.ops_after} ops in {f.shrink_seconds:.1f} s "
              f"(Hypothesis {f.hypothesis_seconds:.1f} s / {f.hypothesis_runs} runs, deletion "
              f"{f.deletion_runs} runs; search + shrink {time.monotonic() - t0:.1f} s): ... {last}")
    if rows:
        met = sum(1 for _, after, secs in rows if after <= 3 and secs <= 30)
        print(f"summary: {len(rows)} shrinks; ops after: median {statistics.median(r[1] for r in rows)}"
              f", max {max(r[1] for r in rows)}; seconds: median "
              f"{statistics.median(r[2] for r in rows):.1f}, max {max(r[2] for r in rows):.1f}; "
              f"goal (<= 3 ops in <= 30 s) met by {met}/{len(rows)}")


if __name__ == "__main__":
    main()
