"""Lanes: which programs of a batch run side by side.

Most programs spend their time asleep on timers, so a batch runs several at once: each lane
is a process of the driver that runs its programs one after another (see lower_driver).
Programs that busy-wait (`spin`: burning CPU until a handler runs, usually a CPU-time timer's)
run in a few lanes only (one per LANES_PER_SPINNER), so that with several batches in flight
the spinners stay about as many as the cores: they neither starve the sleepers nor stretch
past their watchdog. Everything is spread longest first, so that the lanes finish at about
the same time (sleepers fill the spinners' lanes too).
"""
from __future__ import annotations

from typing import Sequence

from conformance.ir import CALLS, Param, Program, walk

BUSY_CALLS = frozenset({"spin"})
_WAITS = (Param.MILLIS, Param.TIMEOUT)
LANES_PER_SPINNER = 8


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


def busy_lanes(lanes: int) -> int:
    """How many of `lanes` may run busy programs: one per LANES_PER_SPINNER lanes, at least
    one."""
    return max(1, lanes // LANES_PER_SPINNER)


def plan(programs: Sequence[Program], lanes: int) -> list[list[int]]:
    """Program indexes per lane (each lane in program order), longest first onto the least
    loaded lane: busy programs only onto the first `busy_lanes(lanes)` lanes."""
    if lanes < 1:
        raise ValueError(f"a batch needs at least one lane, got {lanes}")
    lanes = min(lanes, len(programs)) or 1
    if lanes == 1:
        return [list(range(len(programs)))]
    cost = [estimate_ms(p) for p in programs]
    hogs = {i for i, p in enumerate(programs) if busy(p)}
    spinners = busy_lanes(lanes) if hogs else 0
    out: list[list[int]] = [[] for _ in range(lanes)]
    load = [0] * lanes
    for i in sorted(range(len(programs)), key=lambda i: (-cost[i], i)):
        pool = range(spinners) if i in hogs else range(lanes)
        k = min(pool, key=lambda k: (load[k], k))
        out[k].append(i)
        load[k] += cost[i]
    return [sorted(lane) for lane in out if lane]
