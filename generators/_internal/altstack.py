"""The altstack family: sigaltstack set, query, disable and its errors; SA_ONSTACK handlers.

Between steps the alternate stack is disabled or at least SIGSTKSZ big, so a handler frame
(which on x86-64 with AVX-512 state can exceed MINSIGSTKSZ) always fits; a MINSIGSTKSZ stack
is only set and queried within a step, with no signal delivered before it is replaced.
"""
from __future__ import annotations

from conformance.ir import Ref, StackSize
from generators._internal.build import Builder, Template, flags, sigset
from generators._internal.model import HANDLER, Action, Proc
from generators._internal.signals import _free

FAMILY = "altstack"
ROOMY = (StackSize("SIGSTKSZ"), 32768, 65536)
TOO_SMALL = (StackSize("MINSIGSTKSZ", -1), 0, 1023)   # ENOMEM on every ABI
BAD_SS_BITS = (0x4, 0x10)                              # not SS_*: EINVAL


def _set(b: Builder, p: Proc, size, names=(), bits: int = 0) -> None:
    """sigaltstack(size, flags) and the model update (the kernel's checks, in order)."""
    fl = flags("sigaltstack", names, bits)
    b.op(p, "sigaltstack", size, fl)
    mode = set(fl.names) - {"SS_AUTODISARM"}
    if bits or mode not in (set(), {"SS_ONSTACK"}, {"SS_DISABLE"}):
        return  # EINVAL
    if mode == {"SS_DISABLE"}:
        p.altstack = None
    elif size in TOO_SMALL:
        return  # ENOMEM
    else:
        p.altstack = size


def _enable(b: Builder, p: Proc) -> None:
    """A roomy stack, maybe with SS_AUTODISARM."""
    _set(b, p, b.pick(ROOMY), b.subset(("SS_AUTODISARM",)))


def _disable(b: Builder, p: Proc) -> None:
    _set(b, p, b.pick((0, StackSize("SIGSTKSZ"))), ["SS_DISABLE"] + b.subset(("SS_AUTODISARM",)))


def stack(b: Builder, p: Proc, room: int) -> None:
    """sigaltstack: query, set, disable; EINVAL flags; ENOMEM sizes; a MINSIGSTKSZ stack
    set, queried and replaced."""
    kinds = ["query", "set", "disable", "bad-flags", "too-small"] + ["minimum"] * (room >= 2)
    kind = b.pick(kinds)
    if kind == "query":
        b.op(p, "sigaltstack")
    elif kind == "set":
        _set(b, p, b.pick(ROOMY), b.subset(("SS_AUTODISARM", "SS_ONSTACK")))
    elif kind == "disable":
        _disable(b, p)
    elif kind == "bad-flags":
        if b.flip():
            _set(b, p, b.pick(ROOMY), b.subset(("SS_AUTODISARM",)), b.pick(BAD_SS_BITS))
        else:
            _set(b, p, b.pick(ROOMY), ("SS_ONSTACK", "SS_DISABLE"))
    elif kind == "too-small":
        _set(b, p, b.pick(TOO_SMALL), b.subset(("SS_AUTODISARM",)))
    else:
        b.op(p, "sigaltstack", StackSize("MINSIGSTKSZ"),
             flags("sigaltstack", b.subset(("SS_AUTODISARM",))))
        if room >= 3 and b.flip():
            b.op(p, "sigaltstack")
        if b.flip():
            _enable(b, p)
        else:
            _disable(b, p)


def onstack_handler(b: Builder, p: Proc, room: int) -> None:
    """SA_ONSTACK handlers run on the alternate stack when one is enabled (disarmed during
    the handler with SS_AUTODISARM), on the normal stack when none is; two at once nest."""
    state = b.pick(("enable", "keep", "disable")) if p.altstack else b.pick(("enable", "keep"))
    if state == "enable":
        _enable(b, p)
    elif state == "disable":
        _disable(b, p)
    pool = [s for s in _free(p) if s not in p.blocked]
    two = b.room >= 6 and len(pool) > 1 and b.flip(1, 3)
    first = b.pick(pool)
    sigs = [first] + ([b.pick([s for s in pool if s != first])] if two else [])
    for s in sigs:
        extra = b.subset(("SA_NODEFER", "SA_SIGINFO", "SA_RESTART"))
        b.op(p, "sigaction", s, "handler", flags("sigaction", ["SA_ONSTACK"] + extra))
        p.set_action(s, Action(HANDLER, frozenset(["SA_ONSTACK"] + extra)))
    if two:
        b.op(p, "sigprocmask", "SIG_BLOCK", sigset(sigs))
        p.set_mask(p.blocked | set(sigs))
    for s in sigs:
        b.op(p, "kill", Ref("self"), s)
        p.send(s)
    if two:
        b.op(p, "sigprocmask", "SIG_UNBLOCK", sigset(sigs))
        p.set_mask(p.blocked - set(sigs))


def fork_inherits(b: Builder, p: Proc, room: int) -> None:
    """fork copies the alternate stack settings: the child's query shows the parent's."""
    if not p.altstack or b.flip(1, 4):
        _enable(b, p)
    name, child = b.fork(p, b.child_ctx(p))
    b.op(child, "sigaltstack")
    b.child_body(child, b.room - 1)
    b.child_end(child, reserve=1)
    b.forked(p, name, child)
    b.wait(p, name, child)


TEMPLATES = (
    Template("sigaltstack", FAMILY, stack, weight=4),
    Template("onstack-handler", FAMILY, onstack_handler, min_ops=3, weight=3, handlers=True,
             when=lambda b, p: any(s not in p.blocked for s in _free(p))),
    Template("altstack-fork", FAMILY, fork_inherits, min_ops=4, forks=1),
)
