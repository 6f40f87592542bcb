"""Throughput: what checking costs per target, for the built-in corpus and for generated
programs, and how that cost grows with program size.

    python benchmarks/throughput.py [--corpus all] [--targets ...] [--repeat 3]
        [--generated 200] [--family all] [--max-ops 20]
        [--sizes 5,10,20,50] [--per-size 50] [--stream 1000] [--quick]

(from an installed checkout: `pip install -e .`, or with PYTHONPATH=. from the repository).
`--quick` means --repeat 1 --generated 40 --per-size 10 --stream 200 unless those are given
too.

Generated programs are drawn by `generators.sample(family=, max_ops=, seed=0)` (the same
programs every run), and only those whose oracle prediction allows
exactly one outcome are kept. Batches are DEFAULT_BATCH programs (or the target's own batch
size), fewer when that keeps every job busy, halved while a batch's image is too large; on a
VM target every batch boots a VM, and both end to end and raw include the boots. Every figure is the median of `--repeat` runs.
Progress goes to stderr; stdout gets, in order:

1. Header lines: per program set, its size, how many programs are distinct (a derandomized
   draw repeats some) and how it was drawn; the cost-by-size settings; and, for each named
   target that is not available here, `TARGET: not run (REASON)`.
2. A throughput table, one row per program set (`corpus NAME`, `generated`) and available
   target: `batch` (programs per ELF), `end to end/s` (checked programs per second: oracle,
   lower, assemble, link, run, parse and judge, as `conformance.check.check` does it),
   `raw/s` (programs per second just running the same prebuilt batch ELFs and parsing their
   output), `overhead` (end to end time / raw time), `oracle/s` (predictions per second
   after one untimed pass, the same on every target), `emission/s` (programs lowered,
   assembled and linked per second), `agree` (programs that agreed, or hit a documented
   limitation, of those checked).
3. A stream table, one row per available target: `--stream` programs (seed 0) drawn and
   predicted in worker processes while the target checks them, as `conformance run
   --generate N --keep-going` does: `programs`, `distinct`, `seconds` (start to last
   verdict, drawing included), `programs/s`, `after boot/s` (VMs: programs/s with the
   boots' share of the batch time taken out of `seconds`),
   `drawn in s` (start to last program drawn), `agree`.
4. A cost-by-size table, one row per `--sizes` value and available target: `max_ops`,
   `programs`, `mean ops` (actual ops per program, fork bodies included: a generated program
   has at most max_ops), then milliseconds per program: `end to end`, `after boot` (VMs:
   end to end with the boots' share of the batch time taken out; a few programs per boot
   are mostly boot), `raw`, `oracle`, `emission`, and `agree`.
5. Per target, one `growth` line: each of those costs for the size with the most mean ops
   divided by the same cost for the size with the fewest (a larger max_ops does not always
   draw larger programs), next to the growth of the mean op count.

Nothing is asserted: wall-clock figures depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

from conformance import trace
from conformance.batch import DEFAULT_WATCHDOG_MS, BatchTooLarge, build
from conformance.check import (DEFAULT_BATCH, DEFAULT_JOBS, batch_split, batch_timeout, check,
                               in_flight)
from conformance.compare import AGREES
from conformance.findings import KNOWN
from conformance.ir import Program, op_count
from generators import FAMILIES, sample
from oracle import predict
from targets.runners import DEFAULT_TARGETS, Runner, TargetError, get

T = TypeVar("T")
DEFAULTS = {"repeat": 3, "generated": 200, "per_size": 50, "stream": 1000}
QUICK = {"repeat": 1, "generated": 40, "per_size": 10, "stream": 200}
DEFAULT_SIZES = "5,10,20,50"


def positive_ints(text: str) -> tuple[int, ...]:
    """`5,10,20` as a tuple of positive ints (an argparse type: anything else is a usage error)."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"every size must be at least 1, got {text!r}")
    return values


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, with --quick and the defaults applied to options not given."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default="all")
    ap.add_argument("--targets", default=",".join(DEFAULT_TARGETS))
    ap.add_argument("--repeat", type=int,
                    help=f"runs per figure, median (default {DEFAULTS['repeat']})")
    ap.add_argument("--generated", type=int,
                    help="generated programs to measure, 0 for none "
                    f"(default {DEFAULTS['generated']})")
    ap.add_argument("--family", default="all", choices=FAMILIES)
    ap.add_argument("--max-ops", type=int, default=20, help="max_ops of the --generated programs")
    ap.add_argument("--sizes", type=positive_ints, default=positive_ints(DEFAULT_SIZES),
                    help=f"max_ops values of the cost-by-size table (default {DEFAULT_SIZES})")
    ap.add_argument("--per-size", type=int,
                    help=f"programs drawn per size (default {DEFAULTS['per_size']})")
    ap.add_argument("--stream", type=int,
                    help="programs drawn, predicted and checked as a stream, 0 for none "
                    f"(default {DEFAULTS['stream']})")
    ap.add_argument("--jobs", type=int,
                    help="batches in flight per target (default the target's, else "
                         f"{DEFAULT_JOBS}, as `conformance run`); the raw baseline runs as many")
    ap.add_argument("--quick", action="store_true",
                    help=", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items())
                    + " (smoke runs)")
    args = ap.parse_args(argv)
    # None means "not given", so that an explicit value wins over --quick.
    for key, default in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, QUICK[key] if args.quick else default)
    for key, low in (("repeat", 1), ("generated", 0), ("per_size", 1), ("max_ops", 1),
                     ("jobs", 1), ("stream", 0)):
        if getattr(args, key) is not None and getattr(args, key) < low:
            ap.error(f"--{key.replace('_', '-')} must be at least {low}, got {getattr(args, key)}")
    try:
        args.runners = [get(name) for name in args.targets.split(",")]
    except TargetError as exc:
        ap.error(str(exc))
    return args


def progress(message: str) -> None:
    """One progress line on stderr (stdout carries only results)."""
    print(message, file=sys.stderr, flush=True)


def draw_programs(count: int, *, family: str, max_ops: int) -> list[Program]:
    """`count` generated programs, the same every run (seed 0), each with one predicted outcome."""
    return [p for p in sample(count, family=family, max_ops=max_ops, seed=0)
            if len(predict(p).outcomes) == 1]

def halving(attempt: Callable[[int], T], size: int) -> tuple[int, T]:
    """(size, attempt(size)), halving `size` while a batch image is too large for it."""
    while True:
        try:
            return size, attempt(size)
        except BatchTooLarge as exc:
            if size == 1:
                raise
            size //= 2
            progress(f"  a batch was too large ({exc}); batches of {size}")


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """`items` in consecutive slices of `size` (the last may be shorter)."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """(seconds, fn())."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    """The median wall-clock time of `repeat` calls of `fn`."""
    return statistics.median(timed(fn)[0] for _ in range(repeat))


def oracle_seconds(programs: Sequence[Program], repeat: int) -> float:
    """Median seconds to predict all of `programs`, after one untimed pass: the first pays
    one-time costs (a cold pass over the corpus ran at 1130/s, the next ones at 1650/s)."""
    run = lambda: [predict(p) for p in programs]  # noqa: E731
    run()
    return median_seconds(run, repeat)


def without_boots(seconds: float, report) -> float:
    """`seconds` of a check with the boots' share of its batch time taken out (batches
    overlap, so boots come out as a share, not as their sum)."""
    return seconds * (1 - report.boot_seconds / report.seconds) if report.seconds else 0.0


@dataclass(frozen=True)
class Cost:
    """Median seconds to handle one set of programs on one target, per stage."""

    programs: int
    batch: int
    end_to_end: float
    raw: float
    oracle: float
    emission: float
    agreed: int
    checked: int
    after_boot: float | None = None  # end_to_end without the boots' share (VMs only)


def measure(programs: Sequence[Program], runner: Runner, repeat: int, oracle: float,
            jobs: int | None = None) -> Cost:
    """Every cost of `programs` on `runner` (`oracle`: seconds to predict them all), with
    `jobs` batches in flight both when checking and when just running (a fair ratio)."""
    abi = runner.abi
    slots = in_flight(runner, jobs)

    def emit(size: int) -> list[bytes]:
        return [build(c, abi, ending=runner.batch_ending, lanes=runner.lanes).elf
                for c in chunks(programs, size)]

    def checked(size: int):
        # check() caps batches at a runner's own size (VMs): hand it the halved one that way.
        sized = dataclasses.replace(runner, batch_size=size) if runner.batch_size else runner
        return check(programs, [predict(p) for p in programs], sized, batch_size=size,
                     jobs=slots)

    # The first pass finds a batch size whose images fit; the timed ones reuse it.
    batch, elfs = halving(emit, batch_split(len(programs), runner.batch_size or DEFAULT_BATCH,
                                            slots))
    emission = median_seconds(lambda: emit(batch), repeat)

    def run_one(chunk_elf) -> None:
        chunk, elf = chunk_elf
        trace.parse(runner.run(elf, batch_timeout(len(chunk), DEFAULT_WATCHDOG_MS)).output)

    def run_raw() -> None:
        with ThreadPoolExecutor(max_workers=slots) as pool:
            list(pool.map(run_one, zip(chunks(programs, batch), elfs)))

    raw = median_seconds(run_raw, repeat)
    full, reports = [], []
    for _ in range(repeat):
        seconds, (batch, report) = timed(lambda: halving(checked, batch))
        full.append(seconds)
        reports.append(report)
    last = reports[-1].verdicts
    agreed = sum(1 for v in last if v.status in (AGREES, KNOWN))
    after = [without_boots(seconds, r) for seconds, r in zip(full, reports) if r.boot_seconds]
    return Cost(len(programs), batch, statistics.median(full), raw, oracle, emission, agreed,
                len(last), statistics.median(after) if after else None)


def measure_stream(count: int, runner: Runner, *, family: str, max_ops: int, seed: int,
                   jobs: int | None) -> list[str]:
    """One row of the stream table: `count` programs drawn and predicted in worker processes
    while `runner` checks them (what `conformance run --generate N --keep-going` does)."""
    from conformance.supply import Supply
    start = time.perf_counter()
    with Supply(count, family=family, max_ops=max_ops, seed=seed) as supply:
        report = check(supply, supply.expected, runner, jobs=jobs)
        seconds = time.perf_counter() - start
        drawn = supply.seconds()
        distinct = len(set(supply))
    after_boot = without_boots(seconds, report)
    agreed = sum(1 for v in report.verdicts if v.status in (AGREES, KNOWN))
    for v in report.verdicts:  # named, so that one can be run again: seed 0 draws it again
        if v.status not in (AGREES, KNOWN):
            progress(f"stream on {runner.name}: {v.program.name} {v.status}: "
                     f"{v.detail.splitlines()[0] if v.detail else '(no detail)'}")
    return [runner.name, str(count), str(distinct), f"{seconds:.1f}", f"{count / seconds:.1f}",
            f"{count / after_boot:.1f}" if report.boot_seconds and after_boot else "-",
            f"{drawn:.1f}", f"{agreed}/{count}"]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows under headers, columns aligned: the first left, the others right."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def throughput_row(label: str, target: str, cost: Cost) -> list[str]:
    """One row of the throughput table."""
    n = cost.programs
    return [label, target, str(n), str(min(cost.batch, n)), f"{n / cost.end_to_end:.1f}",
            f"{n / cost.raw:.1f}", f"x{cost.end_to_end / cost.raw:.2f}", f"{n / cost.oracle:.0f}",
            f"{n / cost.emission:.0f}", f"{cost.agreed}/{cost.checked}"]


def per_program_ms(cost: Cost) -> list[float]:
    """[end to end, raw, oracle, emission] milliseconds per program."""
    return [1000 * s / cost.programs
            for s in (cost.end_to_end, cost.raw, cost.oracle, cost.emission)]


def growth(first: Sequence[float], last: Sequence[float]) -> list[str]:
    """Each `last` value as a multiple of the matching `first` value."""
    return [f"x{b / a:.1f}" if a else "n/a" for a, b in zip(first, last)]


def smallest_and_largest(points: Sequence[tuple[int, float, T]]) -> tuple[tuple, tuple]:
    """The (max_ops, mean ops, costs) points with the fewest and the most mean ops."""
    return min(points, key=lambda p: p[1]), max(points, key=lambda p: p[1])


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print (see the module docstring)."""
    from conformance.cli import UsageError, load_corpus
    args = parse_args(argv)
    try:
        corpus = load_corpus(args.corpus)
    except UsageError as exc:
        sys.exit(f"error: {exc}")
    sets: list[tuple[str, list[Program]]] = [(f"corpus {args.corpus}", corpus)]
    if args.generated:
        progress(f"drawing {args.generated} programs "
                 f"(family {args.family}, max_ops {args.max_ops})")
        sets.append(("generated", draw_programs(args.generated, family=args.family,
                                                max_ops=args.max_ops)))
    by_size: list[tuple[int, list[Program]]] = []
    for size in args.sizes:
        progress(f"drawing {args.per_size} programs with max_ops {size}")
        by_size.append((size, draw_programs(args.per_size, family=args.family, max_ops=size)))

    for label, programs in sets:
        how = "" if label.startswith("corpus") else (
            f" (drawn {args.generated}: family {args.family}, max_ops {args.max_ops})")
        print(f"{label}: {len(programs)} programs, {len(set(programs))} distinct{how}")
    print(f"cost by size: {args.per_size} drawn per max_ops value (family {args.family}); "
          f"median of {args.repeat} run{'s' * (args.repeat > 1)}; "
          f"batches of up to {DEFAULT_BATCH} (or the target's own size), "
          f"{args.jobs or f'the target default ({DEFAULT_JOBS} unless it sets one)'} "
          "in flight per target")
    runners = []
    for runner in args.runners:
        why = runner.unavailable()
        if why:
            print(f"{runner.name}: not run ({why})")
        else:
            runners.append(runner)
    sys.stdout.flush()

    rows = []
    for label, programs in sets:
        if not programs:
            continue
        oracle = oracle_seconds(programs, args.repeat)
        for runner in runners:
            progress(f"{label} on {runner.name}: {len(programs)} programs")
            rows.append(throughput_row(label, runner.name, measure(programs, runner, args.repeat,
                                                                   oracle, args.jobs)))
    print()
    print(table(["set", "target", "programs", "batch", "end to end/s", "raw/s", "overhead",
                 "oracle/s", "emission/s", "agree"], rows))

    if args.stream:
        stream_rows = []
        for runner in runners:
            progress(f"stream on {runner.name}: {args.stream} programs")
            stream_rows.append(measure_stream(args.stream, runner, family=args.family,
                                              max_ops=args.max_ops, seed=0, jobs=args.jobs))
        print()
        print(table(["stream", "programs", "distinct", "seconds", "programs/s",
                     "after boot/s", "drawn in s", "agree"], stream_rows))

    size_rows, costs = [], {r.name: [] for r in runners}
    for size, programs in by_size:
        if not programs:
            continue
        ops = statistics.mean(op_count(p) for p in programs)
        oracle = oracle_seconds(programs, args.repeat)
        for runner in runners:
            progress(f"max_ops {size} on {runner.name}: {len(programs)} programs")
            cost = measure(programs, runner, args.repeat, oracle, args.jobs)
            ms = per_program_ms(cost)
            after = 1000 * cost.after_boot / cost.programs if cost.after_boot else None
            costs[runner.name].append((size, ops, ms + ([after] if after else [])))
            size_rows.append([str(size), runner.name, str(len(programs)), f"{ops:.1f}",
                              f"{ms[0]:.2f}", f"{after:.2f}" if after else "-",
                              *(f"{v:.2f}" for v in ms[1:]), f"{cost.agreed}/{cost.checked}"])
    print()
    print(table(["max_ops", "target", "programs", "mean ops", "end to end ms", "after boot ms",
                 "raw ms", "oracle ms", "emission ms", "agree"], size_rows))
    print()
    for name, points in costs.items():
        (size0, ops0, ms0), (size1, ops1, ms1) = smallest_and_largest(points)
        if ops1 == ops0:
            continue
        e2e, raw, orc, emit, *after = growth(ms0, ms1)
        print(f"growth {name}: max_ops {size0} -> {size1}, mean ops {ops0:.1f} -> {ops1:.1f} "
              f"(x{ops1 / ops0:.1f}): end to end {e2e}, "
              + (f"after boot {after[0]}, " if after else "")
              + f"raw {raw}, oracle {orc}, emission {emit}")


if __name__ == "__main__":
    from conformance.interrupt import stopping_on_interrupt
    try:
        with stopping_on_interrupt():  # Ctrl-C kills the batches in flight, not waits for them
            main()
    except KeyboardInterrupt:
        sys.exit("interrupted")
