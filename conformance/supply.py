"""Generated programs and their predictions, drawn in worker processes while checking runs.

Drawing (Hypothesis) and predicting (the oracle) cost more CPU per program than running one,
and both are pure Python: in one process they neither overlap the targets' runs nor use a
second core. A Supply draws fixed-size shards of programs in a pool of worker processes and
hands them out as a Sequence whose items block until their shard is done, so `check` can
start running batch 1 while later shards are still being drawn.

Each shard is its own generate-only Hypothesis run, seeded from (seed, shard index): the same
count and seed give the same programs whatever the number of workers.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import signal
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from conformance.events import Expected
from conformance.ir import Program

MAX_SHARD = 100
MIN_SHARD = 10
WORKER_NICENESS = 5  # the targets' runs (timed programs) come first on a busy machine


def shard_size(count: int) -> int:
    """Programs per shard: small enough that a short run still keeps every worker busy, large
    enough that a shard's Hypothesis run is worth starting. Depends on `count` only."""
    return max(MIN_SHARD, min(MAX_SHARD, -(-count // 8)))


def shard_seed(seed: int, index: int) -> int:
    """The Hypothesis seed of one shard: a stable hash of the two numbers."""
    from generators.sample import derived_seed
    return derived_seed(seed, index, 0)  # the 0 keeps the seeds (and programs) of earlier runs


def draw_shard(index: int, size: int, stride: int, *, family: str, max_ops: int, seed: int,
               profile_name: str, name: str) -> tuple[list[Program], list[Expected]]:
    """Shard `index` (of shards of `stride` programs; the last may be shorter): exactly
    `size` programs named `name/<global index>`, and their predictions under the named
    oracle profile."""
    from generators import prediction, sample
    from oracle import PROFILES
    profile = PROFILES[profile_name]
    drawn = sample(size, family=family, max_ops=max_ops, seed=shard_seed(seed, index))
    if not drawn:
        raise RuntimeError(f"shard {index} drew no program (family {family}, max_ops {max_ops})")
    # sample() gives distinct programs, fewer only when the family runs out of them (a tiny
    # max_ops): then the shard repeats them rather than come up short.
    drawn = list(itertools.islice(itertools.cycle(drawn), size))
    first = index * stride
    programs = [Program(p.body, p.doc, f"{name}/{first + k}") for k, p in enumerate(drawn)]
    return programs, [prediction(p, profile) for p in programs]


def _start_worker() -> None:
    """A drawing worker: lower priority, and Ctrl-C is the main process's to handle (it shuts
    the pool down), not a traceback in every worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        pass


class Supply(Sequence):
    """`count` generated programs, drawn and predicted in `workers` processes; `supply[i]`
    waits for program i. Use as a context manager (it owns the pool)."""

    _open: "weakref.WeakSet[Supply]" = weakref.WeakSet()  # for stop_all

    @classmethod
    def stop_all(cls) -> None:
        """An interrupted run: every open supply's shards not yet started are dropped, so
        that whoever waits for one gets CancelledError now rather than its programs later."""
        for supply in list(cls._open):
            for shard in supply._shards:
                shard.cancel()

    def __init__(self, count: int, *, family: str = "all", max_ops: int = 20,
                 seed: int | None = None, profile_name: str = "linux",
                 workers: int | None = None, name: str = "generated") -> None:
        from generators import programs
        programs(family=family, max_ops=max_ops)  # bad arguments fail here, not in a worker
        if count < 1:
            raise ValueError(f"a supply needs at least one program, got {count}")
        self.count = count
        self.seed = random.SystemRandom().randrange(2 ** 32) if seed is None else seed
        self.workers = workers or os.cpu_count() or 1
        self.size = shard_size(count)
        self.started = time.monotonic()
        self._done_at: list[float] = []  # one entry per finished shard (list.append is atomic)
        self._pool = ProcessPoolExecutor(self.workers, multiprocessing.get_context("spawn"),
                                         initializer=_start_worker)
        self._shards: list[Future] = []
        for k in range(-(-count // self.size)):
            size = min(self.size, count - k * self.size)
            future = self._pool.submit(draw_shard, k, size, self.size, family=family,
                                       max_ops=max_ops, seed=self.seed,
                                       profile_name=profile_name, name=name)
            future.add_done_callback(lambda _: self._done_at.append(time.monotonic()))
            self._shards.append(future)
        self.expected = _Predictions(self)
        Supply._open.add(self)

    @property
    def finished(self) -> float | None:
        """When the last shard was done (None while some are not)."""
        return max(self._done_at) if len(self._done_at) == len(self._shards) else None

    def item(self, i, part: int):
        """Program (`part` 0) or prediction (1) i, or a list of them for a slice; waits for
        its shard."""
        if isinstance(i, slice):
            return [self.item(k, part) for k in range(*i.indices(self.count))]
        if i < 0:
            i += self.count
        if not 0 <= i < self.count:
            raise IndexError(i)
        return self._shards[i // self.size].result()[part][i % self.size]

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i):
        return self.item(i, 0)

    def seconds(self) -> float:
        """How long drawing took, start to last shard (so far, if not done)."""
        return (self.finished or time.monotonic()) - self.started

    def close(self) -> None:
        """Stop the workers (dropping shards nobody waited for)."""
        Supply._open.discard(self)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "Supply":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Predictions(Sequence):
    """The predictions of a Supply's programs, in the same order."""

    def __init__(self, supply: Supply) -> None:
        self._supply = supply

    def __len__(self) -> int:
        return len(self._supply)

    def __getitem__(self, i):
        return self._supply.item(i, 1)
