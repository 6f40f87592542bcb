"""Throughput: checked programs per second per target, end to end, next to the raw cost of
executing the same batch ELFs without any checking (the ratio is the checking overhead).

    python benchmarks/throughput.py [--corpus all] [--targets ...] [--repeat 3]

(from an installed checkout: `pip install -e .`, or with PYTHONPATH=. from the repository)

End to end = predict (oracle) + lower/emit/assemble/link + run + parse + judge. Raw = only
the runs of the already-built ELFs. Prints one line per target; nothing is asserted.
"""
from __future__ import annotations

import argparse
import statistics
import time

from conformance import trace
from conformance.batch import build
from conformance.check import DEFAULT_BATCH, batch_timeout, check
from conformance.cli import load_corpus
from oracle import predict
from targets.runners import DEFAULT_TARGETS, get


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default="all")
    ap.add_argument("--targets", default=",".join(DEFAULT_TARGETS))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    programs = load_corpus(args.corpus)
    print(f"{len(programs)} programs ({args.corpus}), batches of {DEFAULT_BATCH}, "
          f"median of {args.repeat} runs")
    t0 = time.perf_counter()
    expected = [predict(p) for p in programs]
    oracle_s = time.perf_counter() - t0
    print(f"oracle alone: {len(programs) / oracle_s:.0f} predictions/s")
    for name in args.targets.split(","):
        runner = get(name)
        why = runner.unavailable()
        if why:
            print(f"{name}: not run ({why})")
            continue
        chunks = [programs[i:i + DEFAULT_BATCH] for i in range(0, len(programs), DEFAULT_BATCH)]
        t0 = time.perf_counter()
        elfs = [build(c, runner.abi).elf for c in chunks]
        emit_s = time.perf_counter() - t0
        raw, full = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            for chunk, elf in zip(chunks, elfs):
                trace.parse(runner.run(elf, batch_timeout(len(chunk), 2000)).output)
            raw.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            check(programs, [predict(p) for p in programs], runner)
            full.append(time.perf_counter() - t0)
        r, f = statistics.median(raw), statistics.median(full)
        print(f"{name}: end to end {len(programs) / f:.1f} programs/s ({f:.2f} s); raw execution "
              f"{len(programs) / r:.1f} programs/s ({r:.2f} s); overhead x{f / r:.2f}; "
              f"emission alone {len(programs) / emit_s:.0f} programs/s")


if __name__ == "__main__":
    main()
