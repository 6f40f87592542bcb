"""The poll family: poll and ppoll on pipes whose state the model knows exactly.

Timeout 0 may ask about anything. A wait (-1 or a timeout) is used only where its end is
fixed: some entry is certainly ready, or none can become ready and the timeout (virtual
time) ends it, or a pending signal the ppoll mask lets in interrupts it, or a child's single
write (the parent keeps its own write end, so no POLLHUP can race the data) or exit wakes it.
"""
from __future__ import annotations

from conformance.ir import NO_MASK, POLL_EVENTS, PollFd, Ref
from generators._internal import pipes, timers
from generators._internal.build import Builder, Template, flags
from generators._internal.model import Proc

FAMILY = "poll"


def _ready(b: Builder, p: Proc, fd, events) -> bool:
    """Whether an entry reports something now (POLLERR/POLLHUP/POLLNVAL always count)."""
    number = fd if isinstance(fd, int) else p.names.get(fd.name, -1)
    if number < 0:
        return False  # skipped (a failed pipe2 or dup binds -1)
    e = p.fds.get(number)
    if e is None:
        return True  # a closed fd: POLLNVAL
    if e.kind == "r":
        return ("POLLIN" in events and e.pipe.data > 0) or not b.holders(e.pipe, "w")
    return ("POLLOUT" in events and not e.pipe.full) or not b.holders(e.pipe, "r")


def _entries(b: Builder, p: Proc, most: int = 3) -> tuple:
    """Any poll list: live handles, dead handles, a negative fd, a never-opened fd."""
    fds = [Ref(n) for n in p.handles()] + [Ref(n) for n in p.dead_handles()] + [-1, 99]
    chosen = b.subset(fds, most=most)
    return tuple(PollFd(fd, flags("poll", b.subset(POLL_EVENTS, most=3))) for fd in chosen)


def _any_ready(b: Builder, p: Proc, entries) -> bool:
    return any(_ready(b, p, e.fd, e.events.names) for e in entries)


def _keep_mask(b: Builder, p: Proc):
    """ppoll's mask that lets no pending signal in: none, or a superset of the pending."""
    return b.pick((NO_MASK, b.suspend_mask(p, [])))


def poll_now(b: Builder, p: Proc, room: int) -> None:
    """poll/ppoll with timeout 0 on anything: returns at once with the current revents."""
    entries = _entries(b, p)
    if b.flip():
        b.op(p, "poll", entries, 0)
    else:
        b.op(p, "ppoll", entries, 0, _keep_mask(b, p))


def poll_ready(b: Builder, p: Proc, room: int) -> None:
    """A waiting poll (-1 or a timeout) where some entry is ready already: no wait."""
    entries = _entries(b, p)
    if not _any_ready(b, p, entries):
        entries += (PollFd(99, flags("poll", ("POLLIN",))),)  # POLLNVAL is always ready
    timeout = b.pick((-1, b.num(10, 200)))
    if b.flip():
        b.op(p, "poll", entries, timeout)
    else:
        b.op(p, "ppoll", entries, timeout, _keep_mask(b, p))


def poll_timeout(b: Builder, p: Proc, room: int) -> None:
    """Nothing can become ready: the poll sleeps its timeout and returns 0."""
    entries = timers.quiet_entries(b, p, most=3)
    timeout = b.num(10, 200)
    if b.flip():
        b.op(p, "poll", entries, timeout)
    else:
        b.op(p, "ppoll", entries, timeout, _keep_mask(b, p))


def ppoll_signal(b: Builder, p: Proc, room: int) -> None:
    """A blocked, pending, handled signal and a ppoll whose mask lets it in: EINTR after the
    handler when nothing is ready (even with timeout 0); with something ready, the count,
    and the signal stays pending."""
    sig = b.pick(_ppoll_signals(p))
    b.ensure_handler(p, sig, avoid=("SA_RESETHAND",))  # a second instance may stay pending
    b.ensure_mask(p, sig, True)
    b.op(p, "kill", Ref("self"), sig)
    p.send(sig)
    ready = b.flip(1, 3)
    entries = _entries(b, p) if ready else timers.quiet_entries(b, p)
    timeout = b.pick((0, -1, b.num(10, 200)))
    if ready and not _any_ready(b, p, entries):
        entries += (PollFd(99, flags("ppoll", ())),)
    b.op(p, "ppoll", entries, timeout, b.suspend_mask(p, [sig]))
    if not ready:
        p.pending[sig] -= 1
        if not p.pending[sig]:
            del p.pending[sig]
        p._deliver(sig)


def _ppoll_signals(p: Proc) -> list:
    return [s for s in ("SIGUSR1", "SIGUSR2", "SIGHUP", "SIGINT", 33)
            if s not in p.ctx.reserved_signals]


def poll_child(b: Builder, p: Proc, room: int) -> None:
    """The parent polls a pipe (-1) that only its child will write once (POLLIN), or that
    the child's exit leaves without writers (POLLHUP); then it reads and reaps."""
    r, w = b.pipe(p)
    pipe = p.end(r).pipe
    hup = b.flip(1, 3)
    name, child = b.fork(p, b.child_ctx(p, pipes=[pipe]))
    mandatory = 4 + hup  # (child write | parent close), poll, read, wait
    b.child_body(child, b.room - mandatory)
    data = None
    if not hup:
        data = b.data(256)
        b.op(child, "write", Ref(w), data)
    b.child_end(child, reserve=3 + hup)
    b.forked(p, name, child)
    if hup:
        b.close(p, w)  # the child's copy is the last writer: its exit means POLLHUP
    events = ["POLLIN"] + b.subset(("POLLPRI",))
    entries = (PollFd(Ref(r), flags("poll", events)),)
    if b.flip():
        b.op(p, "poll", entries, -1)
    else:
        b.op(p, "ppoll", entries, -1, _keep_mask(b, p))
    size = 1 if data is None else pipes._size(data)
    b.op(p, "read", Ref(r), size)
    b.wait(p, name, child)


def _timer_poll(b: Builder, p: Proc, room: int) -> None:
    timers.interrupts(b, p, room, calls=("poll", "ppoll"))


def _may_block(b: Builder, p: Proc) -> bool:
    return p.ctx.may_block


TEMPLATES = (
    Template("poll-now", FAMILY, poll_now, weight=4),
    Template("poll-ready", FAMILY, poll_ready, weight=2),
    Template("poll-timeout", FAMILY, poll_timeout, weight=2, when=_may_block),
    Template("pipe", FAMILY, pipes.new_pipe, weight=2, when=pipes._room_for_fds),
    Template("write", FAMILY, pipes.write, when=pipes._has("w")),
    Template("close", FAMILY, pipes.close),
    Template("fill", FAMILY, pipes.fill, min_ops=2, when=pipes._room_for_fds),
    Template("ppoll-signal", FAMILY, ppoll_signal, min_ops=4, weight=2, handlers=True,
             when=lambda b, p: bool(_ppoll_signals(p))),
    Template("poll-child", FAMILY, poll_child, min_ops=6, forks=1, weight=2,
             when=pipes._room_for_fds),
    Template("timer-poll", FAMILY, _timer_poll, min_ops=6, handlers=True,
             when=lambda b, p: p.ctx.may_block and "SIGALRM" not in p.ctx.reserved_signals),
)
