"""The timers family: setitimer, getitimer, alarm, nanosleep, and what a timer interrupts.

A timer is armed right before the call that waits for it (nothing that could take real time
in between, not even a probe), with its signal handled, and it is spent or disarmed within
the same step: no timer is left running between steps. Values (and sleeps, and poll
timeouts) stay within 10..200 ms, and a timer that ends a spin() within 5..8 ms (its period
within 8..12); ITIMER_REAL values that must not fire before the next op are at least 100 ms;
alarm() only ever disarms (its unit is a whole second).
"""
from __future__ import annotations

from conformance.ir import NO_MASK, PollFd, Ref
from generators._internal.build import Builder, Template, flags
from generators._internal.model import Proc

FAMILY = "timers"
SIGNAL_OF = {"ITIMER_REAL": "SIGALRM", "ITIMER_VIRTUAL": "SIGVTALRM", "ITIMER_PROF": "SIGPROF"}
WHICH = tuple(SIGNAL_OF)
BAD_WHICH = (3, -1)  # ITIMER_* are 0..2 on every ABI
INTERRUPTIBLE = ("read", "write", "nanosleep", "poll", "ppoll", "spin")
# How long a spin() burns CPU before its timer fires: spinners cannot overlap beyond the
# cores (conformance.lanes), so they bound a batch's time. A CPU-time timer is charged a
# whole scheduler tick at a time (4 ms at HZ=250): a first value of 5..8 ms fires on the
# second tick, and no tick can fire it between setitimer() and spin().
SPIN_MS = (5, 8)
# The period of a CPU-time timer spun on more than once: at least two ticks, so that the next
# expiry is always two ticks after the last (with 5 ms, it can come on the very next tick,
# and one tick while the handler's record is written, between two spins, gives a handler
# the oracle does not see: aarch64-qemu-user, whose emulation of that write is user time).
SPIN_PERIOD_MS = (8, 12)


def query(b: Builder, p: Proc, room: int) -> None:
    """getitimer; setitimer then disarm (the old value read back); an unknown `which`
    (EINVAL)."""
    kind = b.pick(["get", "bad"] + ["arm"] * (room >= 2))
    if kind == "get":
        b.op(p, "getitimer", b.pick(WHICH))
    elif kind == "bad":
        if b.flip():
            b.op(p, "getitimer", b.pick(BAD_WHICH))
        else:
            b.op(p, "setitimer", b.pick(BAD_WHICH), b.num(10, 200))
    else:
        which = b.pick(WHICH)
        low = 100 if which == "ITIMER_REAL" else 10  # must not fire before it is disarmed
        interval = b.pick((0, b.num(10, 200)))
        b.op(p, "setitimer", which, b.num(low, 200), interval)
        if room >= 3 and b.flip():
            b.op(p, "getitimer", which)
        # Disarm: value 0 (a CPU timer keeps a new interval, ITIMER_REAL drops it).
        b.op(p, "setitimer", which, 0, b.pick((0, b.num(10, 200))) if which != "ITIMER_REAL"
             else 0)


def alarm(b: Builder, p: Proc, room: int) -> None:
    """alarm(0): 0 with nothing armed, or disarming a short ITIMER_REAL (1: the remaining
    time rounded up to a whole second). alarm's unit is the second, so it never arms."""
    if room >= 2 and b.flip():
        b.op(p, "setitimer", "ITIMER_REAL", b.num(100, 200), b.pick((0, b.num(10, 200))))
    b.op(p, "alarm", 0)


def _arm_for(b: Builder, p: Proc, which: str, *, avoid=(), deliveries: int = 1,
             blocked: bool = False) -> str:
    """The timer's signal: not pending, handled (without `avoid` flags), (un)blocked."""
    sig = SIGNAL_OF[which]
    b.ensure_not_pending(p, sig)
    if deliveries > 1:
        avoid = tuple(avoid) + ("SA_RESETHAND",)
    b.ensure_handler(p, sig, avoid=avoid)
    b.ensure_mask(p, sig, blocked)
    return sig


def arm_before_wait(b: Builder, p: Proc, value: int) -> None:
    """setitimer(ITIMER_REAL, value), its signal unblocked, right before the op that must
    be waiting when it fires. Never probed: a probe's record would come in between, and a
    host that stalls the program there past the value (32 qemu-user processes on 2 cores)
    lets the timer fire first, so that the wait never ends."""
    b.op(p, "setitimer", "ITIMER_REAL", value, unprobed=True)


def suspend(b: Builder, p: Proc, room: int) -> None:
    """Block SIGALRM, arm ITIMER_REAL (maybe periodic), sigsuspend until it fires (k times),
    then disarm a periodic timer."""
    k = b.num(1, min(3, room - 5)) if room >= 7 else 1  # 3 set-up ops, arm, disarm
    # No SA_NODEFER: the timer may be periodic, and a handler that leaves its
    # own signal unblocked then meets the next expiry whenever it runs longer than the
    # interval (a slow console, an emulated CPU under load): a second handler, not EINTR.
    sig = _arm_for(b, p, "ITIMER_REAL", deliveries=k, blocked=True, avoid=("SA_NODEFER",))
    # A periodic timer's interval must outlast a handler, the next sigsuspend and the disarm
    # even on a loaded emulated CPU: with 4-8 lanes on x86_64-linux-vm, 4 of 2000 programs
    # found it expired again (old value 0) when disarming it at 10..29 ms, 1 of 5000 at 50.
    interval = b.num(100, 200) if k > 1 or (b.room >= 3 and b.flip(1, 4)) else 0
    b.op(p, "setitimer", "ITIMER_REAL", b.num(50, 200), interval)
    if b.room >= 2 + k + bool(interval) and b.flip(1, 3):
        b.op(p, "getitimer", "ITIMER_REAL")
    for _ in range(k):
        b.op(p, "sigsuspend", b.suspend_mask(p, [sig]))
        p._deliver(sig)
    if interval:
        b.op(p, "setitimer", "ITIMER_REAL", 0)


def pause(b: Builder, p: Proc, room: int) -> None:
    """Arm ITIMER_REAL with SIGALRM handled and unblocked, then pause() until it fires."""
    sig = _arm_for(b, p, "ITIMER_REAL")
    arm_before_wait(b, p, b.num(50, 200))
    b.op(p, "pause")
    p._deliver(sig)


def _empty_reader(b: Builder, p: Proc) -> list[str]:
    """Read ends that would block: empty, blocking, some writer left."""
    return [n for n in p.handles("r") if not p.end(n).nonblock and not p.end(n).pipe.data
            and b.holders(p.end(n).pipe, "w")]


def _open_writer(b: Builder, p: Proc) -> list[str]:
    """Write ends where write(70000) stores something, then blocks: a reader, a free slot."""
    return [n for n in p.handles("w") if not p.end(n).nonblock and not p.end(n).pipe.full
            and b.holders(p.end(n).pipe, "r")]


def quiet_entries(b: Builder, p: Proc, most: int = 2) -> tuple:
    """Poll entries that are certainly not ready: empty read ends (asking POLLIN/POLLPRI),
    full write ends (POLLOUT), negative fds."""
    pool: list = [(Ref(n), ("POLLIN", "POLLPRI")) for n in _empty_reader(b, p)]
    pool += [(Ref(n), ("POLLOUT",)) for n in p.handles("w")
             if p.end(n).pipe.full and b.holders(p.end(n).pipe, "r")]
    pool += [(-1, ("POLLIN", "POLLOUT"))]
    chosen = b.subset(pool, most=most)
    return tuple(PollFd(fd, flags("poll", b.subset(events) or events[:1]))
                 for fd, events in chosen)


def interrupts(b: Builder, p: Proc, room: int, calls=INTERRUPTIBLE) -> None:
    """ITIMER_REAL fires while the process waits in a blocking call: read (EINTR, so no
    SA_RESTART), write (partial count), nanosleep, poll, ppoll (EINTR), spin (0)."""
    call = b.pick(calls)
    avoid = ("SA_RESTART",) if call == "read" else ()
    sig = _arm_for(b, p, "ITIMER_REAL", avoid=avoid)
    value = b.num(50, 100)
    later = value + b.num(50, 100)  # a timeout the timer beats by 50 ms at least
    if call == "read":
        readers = _empty_reader(b, p)
        name = b.pick(readers) if readers and b.flip() else b.pipe(p)[0]
        arm_before_wait(b, p, value)
        b.op(p, "read", Ref(name), b.num(1, 64))
    elif call == "write":
        writers = _open_writer(b, p)
        name = b.pick(writers) if writers and b.flip() else b.pipe(p)[1]
        arm_before_wait(b, p, value)
        b.op(p, "write", Ref(name), 70000)  # fills the pipe, then waits: the partial count
        p.end(name).pipe.offer(70000)
    elif call == "nanosleep":
        arm_before_wait(b, p, value)
        b.op(p, "nanosleep", later)
    elif call in ("poll", "ppoll"):
        entries = quiet_entries(b, p)
        timeout = b.pick((-1, later))
        arm_before_wait(b, p, value)
        if call == "poll":
            b.op(p, "poll", entries, timeout)
        else:
            mask = b.pick((NO_MASK, b.suspend_mask(p, [sig])))
            b.op(p, "ppoll", entries, timeout, mask)
    else:
        # Nothing else waits here, and every spinning millisecond is a CPU's: keep it short.
        arm_before_wait(b, p, b.num(*SPIN_MS))
        b.op(p, "spin")
    p._deliver(sig)


def cpu(b: Builder, p: Proc, room: int) -> None:
    """ITIMER_VIRTUAL or ITIMER_PROF counts only CPU time: spin() until it fires (k times
    with an interval), then disarm."""
    k = b.num(1, min(3, room - 5)) if room >= 7 else 1  # 3 set-up ops, arm, disarm
    # A periodic timer counts user time only: ITIMER_PROF counts the handler's own record
    # write too, which on a slow console (an emulated VM's serial port) can outlast the
    # interval and run a second handler before spin() returns (generated/826, seed 2).
    which = "ITIMER_VIRTUAL" if k > 1 else b.pick(("ITIMER_VIRTUAL", "ITIMER_PROF"))
    # No SA_NODEFER with a periodic CPU timer, for the reason given in suspend().
    sig = _arm_for(b, p, which, deliveries=k, avoid=("SA_NODEFER",) if k > 1 else ())
    interval = b.num(*SPIN_PERIOD_MS) if k > 1 else 0
    b.op(p, "setitimer", which, b.num(*SPIN_MS), interval)
    for _ in range(k):
        b.op(p, "spin")
        p._deliver(sig)
    if interval:
        b.op(p, "setitimer", which, 0)


def sleep(b: Builder, p: Proc, room: int) -> None:
    """nanosleep with no timer armed: returns 0 after its time."""
    b.op(p, "nanosleep", b.num(0, 50))


def _may_block(*sigs):
    return lambda b, p: p.ctx.may_block and not set(sigs) & p.ctx.reserved_signals


TEMPLATES = (
    Template("timer-query", FAMILY, query, weight=3),
    Template("alarm", FAMILY, alarm, weight=2),
    Template("nanosleep", FAMILY, sleep, weight=2, when=_may_block()),
    Template("timer-suspend", FAMILY, suspend, min_ops=5, weight=3, handlers=True,
             when=_may_block("SIGALRM")),
    Template("timer-pause", FAMILY, pause, min_ops=5, weight=3, handlers=True,
             when=_may_block("SIGALRM")),
    Template("timer-interrupts", FAMILY, interrupts, min_ops=6, weight=4, handlers=True,
             when=_may_block("SIGALRM")),
    Template("cpu-timer", FAMILY, cpu, min_ops=5, weight=3, handlers=True,
             when=_may_block("SIGVTALRM", "SIGPROF")),
)
