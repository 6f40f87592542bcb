"""The signals family: dispositions, masks, pending sets, raising, handlers, SIGCHLD.

A signal is raised at a point the program fixes: sent to oneself (delivered before kill
returns, or left pending while blocked), or sent by another process while the receiver keeps
it blocked until sigsuspend. Steps never unblock a pending signal whose default action would
end or stop the process, and never let a SIGCHLD or SIGCONT handler survive a step.
"""
from __future__ import annotations

from conformance.ir import SA_FLAGS, Group, Ref
from generators._internal.build import Builder, Template, flags, sigset
from generators._internal.model import (
    CORE, GENERIC_SIGNALS, HANDLER, IGN, STOP, TERM, Action, Proc,
)

FAMILY = "signals"
BAD_SIGNALS = (65, 0)       # sigaction: EINVAL (and SIGKILL/SIGSTOP)
BAD_HOWS = (3, 7, -1)       # sigprocmask: EINVAL (0..2 are real hows)


def _free(p: Proc, sigs=GENERIC_SIGNALS) -> list:
    """Signals this process's steps may change: not reserved by a pattern."""
    return [s for s in sigs if s not in p.ctx.reserved_signals]


def sigaction(b: Builder, p: Proc, room: int) -> None:
    """Install handler/SIG_IGN/SIG_DFL with flags and a mask; or an invalid signal (EINVAL)."""
    kind = b.pick(("set", "set", "bad", "query"))
    if kind == "bad":
        sig = b.pick(("SIGKILL", "SIGSTOP") + BAD_SIGNALS)
        b.op(p, "sigaction", sig, b.pick(("SIG_IGN", "handler", "SIG_DFL")))
        return
    if kind == "query":
        # SIGCHLD and SIGCONT stay SIG_DFL between steps: installing SIG_DFL again is a query.
        sig = b.pick(("SIGCHLD", "SIGCONT"))
        b.op(p, "sigaction", sig if sig not in p.actions else "SIGKILL", "SIG_DFL")
        return
    sig = b.pick(_free(p))
    handler = b.pick(("handler", "SIG_IGN", "SIG_DFL"))
    fl = flags("sigaction", b.subset(SA_FLAGS))
    mask = b.subset([s for s in GENERIC_SIGNALS if s != sig] + ["SIGKILL", "SIGSTOP"], most=3)
    b.op(p, "sigaction", sig, handler, fl, sigset(mask))
    p.set_action(sig, Action(handler, frozenset(fl.names)))


def _safe_mask(p: Proc, new) -> frozenset:
    """`new`, with reserved signals kept as they are and pending killers kept blocked."""
    new = set(new)
    for s in p.ctx.reserved_signals:
        (new.add if s in p.blocked else new.discard)(s)
    return frozenset(new | p.fatal_pending())


def sigprocmask(b: Builder, p: Proc, room: int) -> None:
    """Block, unblock or set the mask (maybe running pending handlers); or a bad `how`."""
    how = b.pick(("SIG_BLOCK", "SIG_UNBLOCK", "SIG_SETMASK", "bad"))
    chosen = b.subset(_free(p) + ["SIGKILL", "SIGSTOP"], most=3)
    if how == "bad":
        b.op(p, "sigprocmask", b.pick(BAD_HOWS), sigset(chosen))
        return
    if how == "SIG_BLOCK":
        new = p.blocked | set(chosen)
    elif how == "SIG_UNBLOCK":
        chosen = [s for s in chosen if s not in p.fatal_pending()]
        new = p.blocked - set(chosen)
    else:
        new = _safe_mask(p, chosen)
        chosen = list(new)
    b.op(p, "sigprocmask", how, sigset(chosen))
    effect = p.set_mask(_safe_mask(p, new))
    assert effect not in (TERM, CORE, STOP), effect


def sigpending(b: Builder, p: Proc, room: int) -> None:
    b.op(p, "sigpending")


def raise_self(b: Builder, p: Proc, room: int) -> None:
    """kill(self, sig) that the process survives; kill(0)/kill(-self) when it is alone."""
    survivable = [s for s in _free(p)
                  if s in p.blocked or p.effect(s) not in (TERM, CORE, STOP)]
    sig = b.pick([0] + survivable)
    alone = p.parent is None and not p.live_kids()  # process 0 leads a group of one
    target = b.pick([Ref("self")] + ([0, Group("self")] if alone else []))
    b.op(p, "kill", target, sig)
    p.send(sig)


def block_raise_deliver(b: Builder, p: Proc, room: int) -> None:
    """Block one or two signals, raise them (pending), then let them in: sigprocmask
    (unblock or setmask) or sigsuspend; their handlers run before that call returns."""
    pool = _free(p)
    two = room >= 7 and b.flip(1, 3)
    first = b.pick(pool)
    sigs = [first] + ([b.pick([s for s in pool if s != first])] if two else [])
    for s in sigs:
        # A queued realtime signal can be delivered twice: SA_RESETHAND would kill then.
        b.ensure_handler(p, s, avoid=("SA_RESETHAND",) if isinstance(s, int) else ())
    if not all(s in p.blocked for s in sigs):
        b.op(p, "sigprocmask", "SIG_BLOCK", sigset(sigs))
        p.set_mask(p.blocked | set(sigs))
    for s in sigs:
        b.op(p, "kill", Ref("self"), s)
        p.send(s)
    if b.room >= 2 and b.flip(1, 3):
        b.op(p, "sigpending")
    # Two signals are let in by the mask for good: with sigsuspend, a handler's sa_mask
    # could keep the second one pending past the call.
    how = b.pick(("SIG_UNBLOCK", "SIG_SETMASK") + (() if two else ("sigsuspend",)))
    if how == "sigsuspend":
        b.op(p, "sigsuspend", b.suspend_mask(p, sigs))
        # One instance for sure; a second queued one may stay pending (the model says so).
        p.pending[first] -= 1
        if not p.pending[first]:
            del p.pending[first]
        p._deliver(first)
        return
    if how == "SIG_UNBLOCK":
        b.op(p, "sigprocmask", how, sigset(sigs))
    else:
        b.op(p, "sigprocmask", how, sigset(p.blocked - set(sigs)))
    effect = p.set_mask(p.blocked - set(sigs))
    assert effect not in (TERM, CORE, STOP), effect


def resethand(b: Builder, p: Proc, room: int) -> None:
    """SA_RESETHAND: the first delivery runs the handler and resets the action to SIG_DFL,
    as the next sigaction's old action shows."""
    pool = [s for s in _free(p) if s not in p.blocked]
    sig = b.pick(pool)
    extra = b.subset(("SA_SIGINFO", "SA_NODEFER", "SA_RESTART", "SA_ONSTACK"))
    b.op(p, "sigaction", sig, "handler", flags("sigaction", ["SA_RESETHAND"] + extra))
    p.set_action(sig, Action(HANDLER, frozenset(["SA_RESETHAND"] + extra)))
    b.op(p, "kill", Ref("self"), sig)
    p.send(sig)
    handler = b.pick(("SIG_DFL", "handler", "SIG_IGN"))
    b.op(p, "sigaction", sig, handler)
    p.set_action(sig, Action(handler))


def child_signals_parent(b: Builder, p: Proc, room: int) -> None:
    """The parent blocks sig; the child sends it; the parent's sigsuspend lets it in."""
    sig = b.pick(_free(p))
    b.ensure_not_pending(p, sig)
    b.ensure_handler(p, sig, avoid=())
    b.ensure_mask(p, sig, True)
    name, child = b.fork(p, b.child_ctx(p, signals=[sig]))
    b.child_body(child, b.room - 3)
    b.op(child, "kill", Ref("parent"), sig)
    b.child_end(child, reserve=2)
    b.forked(p, name, child)
    b.inert(p, b.room - 2, quiet=False)  # sig may be pending already: no sigpending
    b.op(p, "sigsuspend", b.suspend_mask(p, [sig]))
    p._deliver(sig)  # from the child's kill
    b.wait(p, name, child)


def parent_signals_child(b: Builder, p: Proc, room: int) -> None:
    """The child blocks sig and announces it over a pipe; the parent reads the announcement
    and sends sig; the child's sigsuspend lets it in."""
    ann_r, ann_w = b.pipe(p)
    pipe = p.end(ann_r).pipe
    sig = b.pick(_free(p))
    name, child = b.fork(p, b.child_ctx(p, pipes=[pipe], signals=[sig]))
    b.child_body(child, b.room - 7)
    b.ensure_handler(child, sig, avoid=())
    b.ensure_mask(child, sig, True)
    b.op(child, "write", Ref(ann_w), b"r")
    b.op(child, "sigsuspend", b.suspend_mask(child, [sig]))
    child._deliver(sig)
    b.child_body(child, b.room - 3)
    b.child_end(child, reserve=3)
    b.forked(p, name, child)
    b.op(p, "read", Ref(ann_r), 1)
    b.op(p, "kill", Ref(name), sig)
    b.wait(p, name, child)


def sigchld_handler(b: Builder, p: Proc, room: int) -> None:
    """A SIGCHLD handler (SIGCHLD blocked until sigsuspend) reports the child's end; the
    default disposition and mask come back afterwards."""
    fl = flags("sigaction", b.subset(("SA_SIGINFO", "SA_NOCLDSTOP", "SA_RESTART",
                                      "SA_NODEFER", "SA_ONSTACK")))
    b.op(p, "sigaction", "SIGCHLD", "handler", fl)
    b.op(p, "sigprocmask", "SIG_BLOCK", sigset(["SIGCHLD"]))
    name, child = b.fork(p, b.child_ctx(p, may_fork=False))
    child.actions["SIGCHLD"] = Action(HANDLER, frozenset(fl.names))
    child.blocked = child.blocked | {"SIGCHLD"}
    b.child_body(child, b.room - 4)
    b.child_end(child, reserve=4)
    b.forked(p, name, child)
    b.op(p, "sigsuspend", b.suspend_mask(p, ["SIGCHLD"]))
    b.wait(p, name, child)
    b.op(p, "sigaction", "SIGCHLD", "SIG_DFL")
    b.op(p, "sigprocmask", "SIG_UNBLOCK", sigset(["SIGCHLD"]))


def sigchld_ignore(b: Builder, p: Proc, room: int) -> None:
    """SIGCHLD set to SIG_IGN: the child leaves no zombie, so waiting for it gives ECHILD."""
    b.op(p, "sigaction", "SIGCHLD", "SIG_IGN")
    name, child = b.fork(p, b.child_ctx(p, may_fork=False))
    child.actions["SIGCHLD"] = Action(IGN)
    b.child_body(child, b.room - 2)
    b.child_end(child, reserve=2)
    b.forked(p, name, child)
    b.wait(p, name, child)
    b.op(p, "sigaction", "SIGCHLD", "SIG_DFL")


def _sigchld_free(b: Builder, p: Proc) -> bool:
    return "SIGCHLD" not in p.ctx.reserved_signals and "SIGCHLD" not in p.blocked \
        and "SIGCHLD" not in p.actions


TEMPLATES = (
    Template("sigaction", FAMILY, sigaction, weight=3),
    Template("sigprocmask", FAMILY, sigprocmask, weight=3),
    Template("sigpending", FAMILY, sigpending, weight=2),
    Template("raise", FAMILY, raise_self, weight=2, handlers=True),
    Template("block-raise-deliver", FAMILY, block_raise_deliver, min_ops=5, weight=3,
             handlers=True),
    Template("resethand", FAMILY, resethand, min_ops=3, handlers=True,
             when=lambda b, p: any(s not in p.blocked for s in _free(p))),
    Template("child-signals-parent", FAMILY, child_signals_parent, min_ops=7, forks=1,
             weight=2, handlers=True),
    Template("parent-signals-child", FAMILY, parent_signals_child, min_ops=9, forks=1,
             weight=2, handlers=True),
    Template("sigchld-handler", FAMILY, sigchld_handler, min_ops=7, forks=1, handlers=True,
             when=_sigchld_free),
    Template("sigchld-ignore", FAMILY, sigchld_ignore, min_ops=4, forks=1, when=_sigchld_free),
)
