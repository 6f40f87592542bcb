"""The pipes family: pipe, pipe2, read, write, close, dup, dup2, with children as peers.

Reads and writes are steered by the model so that none waits for a peer that will never come:
a blocking read needs data or no writer left, a blocking write must fit. Writing with no
reader left raises SIGPIPE; that is chosen only where it cannot end the process by accident.
"""
from __future__ import annotations

from conformance.ir import Ref
from generators._internal.build import Builder, Template
from generators._internal.model import CORE, STOP, TERM, Proc

FAMILY = "pipes"
BAD_FDS = (-1, 99)            # never open: literal dup2 targets stay in 10..20
BAD_PIPE2_BITS = (0x1, 0x40)  # O_WRONLY, O_CREAT: EINVAL on every ABI (O_DIRECT differs)
MAX_FDS = 14                  # keep fd tables (and the lowering's name slots) small


def new_pipe(b: Builder, p: Proc, room: int) -> None:
    """pipe() or pipe2(flags), sometimes with invalid flag bits (EINVAL, binds nothing)."""
    kind = b.pick(("pipe", "pipe2", "pipe2-bad"))
    if kind == "pipe":
        b.pipe(p, call="pipe")
    elif kind == "pipe2":
        b.pipe(p, b.subset(("O_NONBLOCK", "O_CLOEXEC")), call="pipe2")
    else:
        b.pipe(p, b.subset(("O_NONBLOCK", "O_CLOEXEC")), b.pick(BAD_PIPE2_BITS))


def sigpipe_safe(p: Proc) -> bool:
    """Whether raising SIGPIPE now is harmless: the writer survives it (ignored, handled or
    blocked) and no pattern has reserved it."""
    if "SIGPIPE" in p.ctx.reserved_signals:
        return False
    return "SIGPIPE" in p.blocked or p.effect("SIGPIPE") not in (TERM, CORE, STOP)


def write_one(b: Builder, p: Proc, name: str) -> None:
    """write(name, data) that returns: fits, or nonblocking, or EPIPE that is survived."""
    e = p.end(name)
    readers = b.holders(e.pipe, "r")
    if not readers:
        if sigpipe_safe(p) and b.flip():
            data = b.data()
            b.op(p, "write", Ref(name), data)
            p.send("SIGPIPE")
        else:
            b.op(p, "write", Ref(name), b"")  # an empty write never raises SIGPIPE
        return
    if e.nonblock:  # a partial count or EAGAIN when it does not fit
        data = b.pick((b.data(), 4096, 65536)) if b.flip(1, 4) else b.data()
    else:
        data = b.data()
        if not e.pipe.fits(_size(data)):
            data = b""  # it would wait for a reader that may never come
    b.op(p, "write", Ref(name), data)
    e.pipe.offer(_size(data))


def _size(data) -> int:
    return data if isinstance(data, int) else len(data)


def _handle(b: Builder, p: Proc, kind: str | None) -> str:
    """A usable handle (of that kind); a new pipe first if there is none."""
    names = p.handles(kind)
    if names:
        return b.pick(names)
    r, w = b.pipe(p)
    return w if kind == "w" else r


def write(b: Builder, p: Proc, room: int) -> None:
    """A write that completes, then maybe a read back through the same pipe."""
    name = _handle(b, p, "w")
    write_one(b, p, name)
    e = p.end(name)
    back = [n for n in p.handles("r") if p.end(n).pipe is e.pipe]
    if back and b.room >= 1 and b.flip():
        read_one(b, p, b.pick(back))


def read_one(b: Builder, p: Proc, name: str) -> None:
    """read(name, n) that returns: data there, EOF, EAGAIN, or a zero count."""
    e = p.end(name)
    data = e.pipe.data
    if data:
        n = b.pick((b.num(1, data), data, b.num(data, data + 64)))
    elif not b.holders(e.pipe, "w") or e.nonblock:
        n = b.num(0, 16)  # EOF (0) or EAGAIN
    else:
        n = 0  # a zero count returns at once even on an empty pipe
    b.op(p, "read", Ref(name), n)
    e.pipe.take(n)


def read(b: Builder, p: Proc, room: int) -> None:
    read_one(b, p, _handle(b, p, "r"))


def close(b: Builder, p: Proc, room: int) -> None:
    """close a live handle, or a dead one / a bad number (EBADF)."""
    live, dead = p.handles(), p.dead_handles()
    options = ["live"] * bool(live) + ["dead"] * bool(dead) + ["bad"]
    what = b.pick(options)
    if what == "live":
        b.close(p, b.pick(live))
    elif what == "dead":
        b.op(p, "close", Ref(b.pick(dead)))
    else:
        b.op(p, "close", b.pick(BAD_FDS))


def dup(b: Builder, p: Proc, room: int) -> None:
    """d = dup(fd): the lowest free fd; EBADF for a dead handle (binds -1)."""
    if not p.handles() and room >= 2 and b.flip():
        _handle(b, p, None)
    live, dead = p.handles(), p.dead_handles()
    src = b.pick(live + dead) if live or dead else None
    d = b.fresh("d")
    if src is None:
        b.op(p, "dup", b.pick(BAD_FDS), binds=(d,))
        p.names[d] = -1
        return
    b.op(p, "dup", Ref(src), binds=(d,))
    e = p.end(src)
    if e is None:
        p.names[d] = -1
    else:
        fd = p.lowest_free()
        p.fds[fd] = e
        p.names[d] = fd


def dup2(b: Builder, p: Proc, room: int) -> None:
    """dup2(old, new) onto another handle, itself, a chosen free number, or a bad one."""
    if not p.handles():
        _handle(b, p, None)
    live = p.handles()
    old = b.pick(live + p.dead_handles())
    kinds = ["self", "literal", "bad"] + ["handle"] * (len(live) > 1)
    kind = b.pick(kinds)
    if kind == "self":
        new = Ref(old)
    elif kind == "handle":
        new = Ref(b.pick([n for n in live if n != old]))
    elif kind == "literal":
        free = [fd for fd in range(10, 21) if fd not in p.fds]
        new = b.pick(free)
    else:
        new = b.pick((-1, 0x7fffffff))
    bind = b.flip(1, 3)
    d = b.fresh("d") if bind else None
    b.op(p, "dup2", Ref(old), new, binds=(d,) if d else ())
    e = p.end(old)
    newfd = p.names[new.name] if isinstance(new, Ref) else new
    ok = e is not None and (newfd == p.names[old] or 0 <= newfd < 1024)
    if ok and newfd != p.names[old]:
        p.fds[newfd] = e  # dup2 closes what newfd held first
    if d:
        p.names[d] = newfd if ok else -1


def ebadf(b: Builder, p: Proc, room: int) -> None:
    """read/write on a dead handle, a bad number, or the wrong end of a pipe: EBADF."""
    targets = [Ref(n) for n in p.dead_handles()] + list(BAD_FDS)
    wrong_read = [Ref(n) for n in p.handles("w")]   # reading a write end
    wrong_write = [Ref(n) for n in p.handles("r")]  # writing a read end
    call = b.pick(("read", "write"))
    pool = targets + (wrong_read if call == "read" else wrong_write)
    fd = b.pick(pool)
    if call == "read":
        b.op(p, "read", fd, b.num(0, 16))
    else:
        b.op(p, "write", fd, b.data(16))


def fill(b: Builder, p: Proc, room: int) -> None:
    """A nonblocking pipe filled (nearly) to the brim: a partial write, EAGAIN, then a read
    that frees a slot (or not: Linux frees whole pages only)."""
    r, w = b.pipe(p, ["O_NONBLOCK"] + b.subset(("O_CLOEXEC",)))
    pipe = p.end(r).pipe
    first = b.pick((65536, 70000, 61440))
    b.op(p, "write", Ref(w), first)
    pipe.offer(first)
    if room >= 3:
        b.op(p, "write", Ref(w), b.pick((1, b"x")))  # EAGAIN if that left no free slot
        pipe.offer(1)
    if room >= 5 and b.flip():
        n = b.pick((4096, 1, 4095, 65536))
        b.op(p, "read", Ref(r), n)
        pipe.take(n)
        b.op(p, "write", Ref(w), 1)
        pipe.offer(1)


def eof(b: Builder, p: Proc, room: int) -> None:
    """Data outlives its writer: read the data, then EOF (sticky)."""
    r, w = b.pipe(p)
    pipe = p.end(r).pipe
    data = b.data()
    b.op(p, "write", Ref(w), data)
    pipe.offer(_size(data))
    b.close(p, w)
    n = _size(data) + b.num(0, 8)
    b.op(p, "read", Ref(r), n)
    pipe.take(n)
    if room >= 5:
        b.op(p, "read", Ref(r), b.num(1, 16))


def child_writer(b: Builder, p: Proc, room: int) -> None:
    """The child writes once; the parent reads it (blocking), maybe EOF after the child's
    exit, then reaps it."""
    r, w = b.pipe(p)
    pipe = p.end(r).pipe
    close_w = b.flip()
    mandatory = 3 + close_w  # child write, parent read, wait (+ close)
    name, child = b.fork(p, b.child_ctx(p, pipes=[pipe]))
    b.child_body(child, b.room - mandatory)
    data = b.data()
    b.op(child, "write", Ref(w), data)
    b.child_body(child, b.room - mandatory + 1)
    b.child_end(child, reserve=mandatory - 1)
    b.forked(p, name, child)
    if close_w:
        b.close(p, w)
    size = _size(data)
    n = b.pick((size, size + b.num(1, 64)))
    b.op(p, "read", Ref(r), n)  # one write of <= PIPE_BUF bytes arrives whole
    if close_w and b.room >= 2 and b.flip():
        b.op(p, "read", Ref(r), b.num(1, 16))  # 0 once the child has exited
    b.wait(p, name, child)


def child_reader(b: Builder, p: Proc, room: int) -> None:
    """The parent writes once; the child reads it, then maybe EOF once both closed w."""
    r, w = b.pipe(p)
    pipe = p.end(r).pipe
    eof_too = b.room >= 7 and b.flip()
    # child read, parent write, wait (+ child close, child EOF read, parent close)
    mandatory = 3 + 3 * eof_too
    name, child = b.fork(p, b.child_ctx(p, pipes=[pipe]))
    b.child_body(child, b.room - mandatory)
    if eof_too:
        b.close(child, w)
    data = b.data()
    size = _size(data)
    b.op(child, "read", Ref(r), b.pick((size, size + b.num(1, 64))))
    if eof_too:
        b.op(child, "read", Ref(r), b.num(1, 16))  # 0 once the parent has closed w too
    b.child_end(child, reserve=2 + eof_too)
    b.forked(p, name, child)
    b.op(p, "write", Ref(w), data)
    if eof_too:
        b.close(p, w)
    b.wait(p, name, child)


def request_reply(b: Builder, p: Proc, room: int) -> None:
    """Two pipes: the parent asks, the child answers, the parent reads the answer."""
    qr, qw = b.pipe(p)
    ar, aw = b.pipe(p)
    pipes = [p.end(qr).pipe, p.end(ar).pipe]
    name, child = b.fork(p, b.child_ctx(p, pipes=pipes))
    b.child_body(child, b.room - 5)
    ask, answer = b.data(64), b.data(64)
    b.op(child, "read", Ref(qr), _size(ask))
    b.op(child, "write", Ref(aw), answer)
    b.child_end(child, reserve=3)
    b.forked(p, name, child)
    b.op(p, "write", Ref(qw), ask)
    b.op(p, "read", Ref(ar), _size(answer))
    b.wait(p, name, child)


def sigpipe_child(b: Builder, p: Proc, room: int) -> None:
    """No reader left anywhere: the child's write raises SIGPIPE (kills it by default,
    EPIPE if it ignores, handles or blocks it)."""
    r, w = b.pipe(p)
    pipe = p.end(r).pipe
    b.close(p, r)
    name, child = b.fork(p, b.child_ctx(p, pipes=[pipe], signals=["SIGPIPE"]))
    b.child_body(child, b.room - 2)
    b.op(child, "write", Ref(w), b.data(16))
    child.send("SIGPIPE")
    if not child.done:
        b.child_end(child, reserve=1)
    b.forked(p, name, child)
    b.wait(p, name, child)


def big_transfer(b: Builder, p: Proc, room: int) -> None:
    """write(w, 70000) larger than the pipe completes as the child reads it in chunks."""
    r, w = b.pipe(p)
    pipe = p.end(r).pipe
    name, child = b.fork(p, b.child_ctx(p, pipes=[pipe]))
    b.child_body(child, b.room - 8)
    b.close(child, w)
    # Linux fills all 16 pages before the reader gets in: 32768, 32768, 4464, then EOF.
    for _ in range(4):
        b.op(child, "read", Ref(r), 32768)
    b.forked(p, name, child)
    b.op(p, "write", Ref(w), 70000)
    b.close(p, w)
    b.wait(p, name, child)


def _has(kind: str | None = None):
    """Some usable handle (of that kind), or room to make a pipe first."""
    return lambda b, p: bool(p.handles(kind)) or (b.room >= 2 and _room_for_fds(b, p))


def _room_for_fds(b, p) -> bool:
    return len(p.fds) < MAX_FDS


TEMPLATES = (
    Template("pipe", FAMILY, new_pipe, weight=3, when=_room_for_fds),
    Template("write", FAMILY, write, weight=3, when=_has("w")),
    Template("read", FAMILY, read, weight=3, when=_has("r")),
    Template("close", FAMILY, close, weight=2),
    Template("dup", FAMILY, dup, weight=2, when=_room_for_fds),
    Template("dup2", FAMILY, dup2, weight=3,
             when=lambda b, p: _has()(b, p) and _room_for_fds(b, p)),
    Template("ebadf", FAMILY, ebadf),
    Template("fill", FAMILY, fill, min_ops=2, when=_room_for_fds),
    Template("eof", FAMILY, eof, min_ops=4, when=_room_for_fds),
    Template("child-writer", FAMILY, child_writer, min_ops=6, forks=1, weight=2,
             when=_room_for_fds),
    Template("child-reader", FAMILY, child_reader, min_ops=5, forks=1, weight=2,
             when=_room_for_fds),
    Template("request-reply", FAMILY, request_reply, min_ops=8, forks=1, when=_room_for_fds),
    Template("sigpipe-child", FAMILY, sigpipe_child, min_ops=5, forks=1, when=_room_for_fds),
    Template("big-transfer", FAMILY, big_transfer, min_ops=10, forks=1, when=_room_for_fds),
)
