"""What building a batch costs: lowering, emitting, assembling and linking, per ISA.

    python benchmarks/build.py [--programs 300] [--batch 100] [--repeat 5] [--tree DIR]

Builds the same generated programs (seed 0) for every Linux ABI in batches of `--batch`
programs, and prints per ABI the CPU per program (the least of `--repeat` rounds), the
assembly lines and the image bytes per program. `--tree DIR` builds with another checkout's
code (a `git worktree` of an older commit, say), so two versions can be set side by side;
the programs are then that checkout's own draw of seed 0.
CPU time moves with the host's load; for figures that do not, count instructions:

    valgrind --tool=callgrind python benchmarks/build.py --repeat 1 [--tree DIR]

and subtract a run with `--repeat 0`, which draws the programs and builds nothing else.
Nothing is asserted.
"""
from __future__ import annotations

import argparse
import sys
import time


def main() -> None:
    """Measure and print (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", type=int, default=300)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tree", help="build with the code of this checkout")
    args = ap.parse_args()
    if args.programs < 1 or args.batch < 1 or args.repeat < 0:
        ap.error("--programs and --batch must be >= 1, --repeat >= 0")
    if args.tree:
        sys.path.insert(0, args.tree)
    from conformance.batch import build
    from generators import sample
    from targets.tables import load

    programs = sample(args.programs, seed=0)
    print(f"{len(programs)} programs (seed 0), batches of {args.batch}")
    for abi_name in ("linux-x86_64", "linux-aarch64"):
        abi = load(abi_name)
        build(programs[:1], abi)  # warm: keystone's engine, cached strategies and routines
        if not args.repeat:
            continue
        best, lines, size = float("inf"), 0, 0
        for _ in range(args.repeat):
            t0, lines, size = time.process_time(), 0, 0
            for i in range(0, len(programs), args.batch):
                batch = build(programs[i:i + args.batch], abi, lanes=16)
                # the lines assembled for this batch (older trees have no code_listing:
                # they assembled the whole listing every time)
                lines += getattr(batch, "code_listing", batch.listing).count("\n")
                size += len(batch.elf)
            best = min(best, time.process_time() - t0)
        n = len(programs)
        print(f"  {abi_name:14} {1000 * best / n:6.2f} ms of CPU/program, {lines / n:5.0f} "
              f"lines assembled/program, {size / n:6.0f} image bytes/program")


if __name__ == "__main__":
    main()
