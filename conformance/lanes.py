"""Lanes: which programs of a batch run side by side.

Most programs spend their time asleep on timers, so a batch runs several at once: each lane
is a process of the driver that runs its programs one after another (see lower_driver).
Programs that busy-wait (`spin`: burning CPU until a handler runs, usually a CPU-time timer's)
share one lane, so that no more of them run at once than with one lane per batch: they
neither starve the sleepers nor stretch past their watchdog. The others are spread so that
the lanes finish at about the same time.
"""
from __future__ import annotations

import heapq
from typing import Sequence

from conformance.ir import CALLS, Param, Program, walk

BUSY_CALLS = frozenset({"spin"})
_WAITS = (Param.MILLIS, Param.TIMEOUT)


def busy(program: Program) -> bool:
    """The program busy-waits somewhere (a CPU hog while it runs)."""
    return any(loc.op.call in BUSY_CALLS for loc in walk(program))


def estimate_ms(program: Program) -> int:
    """A rough cost for balancing lanes: every duration it names, plus one per op."""
    total = 0
    for loc in walk(program):
        total += 1
        params = CALLS[loc.op.call].params
        for param, arg in zip(params, loc.op.args):
            if param in _WAITS and isinstance(arg, int) and arg > 0:
                total += arg
    return total


def plan(programs: Sequence[Program], lanes: int) -> list[list[int]]:
    """Program indexes per lane (each lane in program order): busy programs together in the
    first lane, the others longest first onto the least loaded remaining lane."""
    if lanes < 1:
        raise ValueError(f"a batch needs at least one lane, got {lanes}")
    lanes = min(lanes, len(programs)) or 1
    if lanes == 1:
        return [list(range(len(programs)))]
    hogs = [i for i, p in enumerate(programs) if busy(p)]
    taken = set(hogs)
    cost = {i: estimate_ms(p) for i, p in enumerate(programs) if i not in taken}
    rest = sorted(cost, key=lambda i: (-cost[i], i))
    out: list[list[int]] = [hogs] if hogs else []
    free = lanes - len(out)
    shared = [[] for _ in range(free)]
    load = [(0, k) for k in range(free)]
    for i in rest:
        so_far, k = heapq.heappop(load)
        shared[k].append(i)
        heapq.heappush(load, (so_far + cost[i], k))
    return [sorted(lane) for lane in out + shared if lane]
