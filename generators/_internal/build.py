"""The builder: draws choices, emits IR ops into process bodies and keeps the model in step.

Every choice goes through Hypothesis (`draw`), so shrinking works on the choices: steps are
drawn one after another behind a "more?" choice that shrinks to "stop", alternatives are listed
simplest first, numbers shrink towards their lower bound.
"""
from __future__ import annotations

import functools
import itertools
import threading
from dataclasses import dataclass
from typing import Callable

from hypothesis import strategies as st

from conformance.ir import CALLS, DEFAULT_TAIL, Flags, Op, Ref, SigSet
from generators._internal.model import (
    CORE, GENERIC_SIGNALS, HANDLER, IGNORE, TERM, Action, Ctx, End, Kid, Pipe, Proc,
    canonical,
)

# Flags a recording handler may be installed with; SA_NOCLDSTOP only matters for SIGCHLD.
HANDLER_FLAGS = ("SA_RESTART", "SA_SIGINFO", "SA_NODEFER", "SA_RESETHAND", "SA_ONSTACK")


def flags(call: str, names=(), bits: int = 0) -> Flags:
    """A Flags operand in the parser's canonical order."""
    order = CALLS[call].flag_family
    return Flags(tuple(sorted(set(names), key=order.index)), bits)


def sigset(sigs=()) -> SigSet:
    """A SigSet operand in canonical order."""
    return SigSet(canonical(sigs))


@dataclass(frozen=True)
class Template:
    """One step pattern: deterministic by construction, given its guard holds.

    `build(b, proc, room)` emits at most `room` ops (at least `min_ops` are available) and
    updates the model; `when(b, proc)` says whether it applies now; `forks` is how many
    processes it needs."""

    name: str
    family: str
    build: Callable
    min_ops: int = 1
    forks: int = 0
    when: Callable = lambda b, p: True
    weight: int = 1
    handlers: bool = False    # runs handlers (the registers family probes these most)


class _PendingSteps(threading.local):
    """The arguments of the steps being drawn in this thread, innermost last (a fork's body
    draws its steps inside its parent's)."""

    def __init__(self):
        self.stack: list[tuple] = []


_pending_steps = _PendingSteps()


def _step(draw) -> bool:
    builder, proc, avail, stop_odds = _pending_steps.stack[-1]
    outer, builder.draw = builder.draw, draw  # the step's draws belong to its span
    try:
        return builder._step(proc, avail, stop_odds)
    finally:
        builder.draw = outer


# One strategy object for every step, its arguments passed aside: a fresh composite per
# step (its validation and cached properties computed again) was a sixth of drawing's cost.
_STEP = st.composite(_step)()

# One strategy object per range, reused: building and validating a fresh strategy for each
# of a program's hundred-odd choices cost more than drawing them.
_integers = functools.lru_cache(maxsize=None)(st.integers)
_binary = functools.lru_cache(maxsize=None)(st.binary)


class Builder:
    """State of one program being drawn."""

    def __init__(self, draw, max_ops: int, max_procs: int, choices: list[tuple[Template, int]]):
        self.draw = draw
        self.room = max_ops
        self.procs_left = max_procs - 1
        self.choices = choices  # (template, integer weight), simplest first
        self.probe = False
        self._ids = itertools.count(1)
        self.live: list[Proc] = []

    # -- drawing -------------------------------------------------------------------------

    def pick(self, options):
        """One of `options`; shrinks towards the first."""
        options = list(options)
        return options[self.num(0, len(options) - 1)]

    def num(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi]; shrinks towards lo."""
        return lo if lo == hi else self.draw(_integers(lo, hi))

    def flip(self, p_true: int = 1, of: int = 2) -> bool:
        """True with probability about p_true/of; shrinks to False."""
        return self.draw(_integers(0, of - 1)) >= of - p_true

    def subset(self, items, most: int | None = None) -> list:
        """A few of `items` (each with odds 1/3, the first `most` kept), in order; shrinks
        towards none."""
        chosen = []
        for x in items:
            if most is not None and len(chosen) == most:
                break  # the rest could not be kept: drawing them only lengthens the choices
            if self.flip(1, 3):
                chosen.append(x)
        return chosen

    def weighted(self, entries: list[tuple[object, int]]):
        """One entry by integer weight; shrinks towards the first.

        A uniform index, accepted with probability weight/max (else drawn again): the index
        stays a small choice the shrinker can walk down one entry at a time, and a
        shrunk acceptance draw (0) always accepts."""
        top = max(w for _, w in entries)
        while True:
            k = self.pick(range(len(entries)))
            if self.pick(range(top)) < entries[k][1]:
                return entries[k][0]

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    # -- emitting ------------------------------------------------------------------------

    def op(self, proc: Proc, call: str, *args, binds=(), body=None,
           unprobed: bool = False) -> Op:
        """Append one op to `proc` (missing trailing arguments take their defaults);
        `unprobed` keeps a registers step from probing it."""
        spec = CALLS[call]
        defaults = DEFAULT_TAIL.get(call, ())
        missing = len(spec.params) - len(args)
        if missing:
            args = tuple(args) + tuple(defaults[len(defaults) - missing:])
        probe = False
        if self.probe and not unprobed and call not in ("exit", "fork"):
            probe = self.flip()
        op = Op(call, tuple(args), tuple(binds), body, probe)
        proc.body.append(op)
        self.room -= 1
        return op

    # -- steps ---------------------------------------------------------------------------

    def steps(self, proc: Proc, limit: int, *, stop_odds: int = 10) -> None:
        """Draw steps for `proc` while the choices say "more" and `limit` ops remain.

        Each step (its "more?" choice included) is one span of the choice sequence, so the
        shrinker can delete a whole step without the steps after it changing meaning."""
        start = self.room
        while not proc.done:
            avail = min(self.room, limit - (start - self.room))
            if avail <= 0 or not self._draw_step(proc, avail, stop_odds):
                break

    def _draw_step(self, proc: Proc, avail: int, stop_odds: int) -> bool:
        """One step drawn as its own span; whether there was one."""
        _pending_steps.stack.append((self, proc, avail, stop_odds))
        try:
            return self.draw(_STEP)
        finally:
            _pending_steps.stack.pop()

    def _step(self, proc: Proc, avail: int, stop_odds: int) -> bool:
        if self.num(0, stop_odds - 1) == 0:
            return False
        # A step sees only its own room: guards and patterns can use `self.room` freely.
        hidden, self.room = self.room - avail, avail
        options = [(t, w) for t, w in self.choices
                   if t.min_ops <= avail and t.forks <= self.procs_left
                   and (t.forks == 0 or proc.ctx.may_fork) and t.when(self, proc)]
        if options:
            template = self.weighted(options)
            template.build(self, proc, avail)
            assert self.room >= 0, f"{template.name} overran its room"
        self.room += hidden
        return bool(options)

    # -- fds -----------------------------------------------------------------------------

    def pipe(self, proc: Proc, flag_names=(), bits: int = 0, call: str | None = None):
        """r, w = pipe()/pipe2(flags); returns the two names (bound to -1 on EINVAL)."""
        r, w = self.fresh("r"), self.fresh("w")
        if call is None:
            call = "pipe2" if flag_names or bits else "pipe"
        if call == "pipe":
            self.op(proc, "pipe", binds=(r, w))
        else:
            self.op(proc, "pipe2", flags("pipe2", flag_names, bits), binds=(r, w))
        if bits:
            proc.names[r] = proc.names[w] = -1
            return r, w
        pipe, nonblock = Pipe(), "O_NONBLOCK" in flag_names
        fr = proc.lowest_free()
        fw = proc.lowest_free(skip=fr)
        proc.fds[fr], proc.fds[fw] = End(pipe, "r", nonblock), End(pipe, "w", nonblock)
        proc.names[r], proc.names[w] = fr, fw
        return r, w

    def holders(self, pipe: Pipe, kind: str) -> int:
        """How many fds of live processes hold that end of the pipe."""
        return sum(1 for p in self.live for e in p.fds.values()
                   if e.pipe is pipe and e.kind == kind)

    def close(self, proc: Proc, name) -> None:
        self.op(proc, "close", Ref(name) if isinstance(name, str) else name)
        fd = proc.names.get(name, -1) if isinstance(name, str) else name
        proc.fds.pop(fd, None)

    # -- signals -------------------------------------------------------------------------

    def handler_flags(self, avoid=(), extra=()) -> Flags:
        """Flags for a recording handler (never SA_ONSTACK with a too-small stack: the
        generator keeps only SIGSTKSZ-sized stacks enabled across steps)."""
        allowed = [f for f in HANDLER_FLAGS if f not in avoid] + list(extra)
        return flags("sigaction", self.subset(allowed))

    def install(self, proc: Proc, sig, *, avoid=(), extra=()) -> None:
        """sigaction(sig, handler, flags[, mask]) and the model update."""
        fl = self.handler_flags(avoid, extra)
        mask = sigset(self.subset([s for s in GENERIC_SIGNALS if s != sig], most=2)
                      if self.flip(1, 4) else ())
        self.op(proc, "sigaction", sig, "handler", fl, mask)
        proc.set_action(sig, Action(HANDLER, frozenset(fl.names)))

    def ensure_handler(self, proc: Proc, sig, *, avoid=("SA_RESETHAND",), extra=()) -> None:
        """Make sure `sig` runs the recording handler, without the flags in `avoid`.
        Emits at most one op. The default avoids SA_RESETHAND: a second delivery would kill."""
        action = proc.actions.get(sig, Action())
        if action.handler == HANDLER and not (action.flags & set(avoid)) and not self.flip(1, 4):
            return
        self.install(proc, sig, avoid=avoid, extra=extra)

    def ensure_mask(self, proc: Proc, sig, blocked: bool) -> None:
        """Block or unblock `sig` (one op at most); unblocking may run its pending handler."""
        if (sig in proc.blocked) == blocked:
            return
        how = "SIG_BLOCK" if blocked else "SIG_UNBLOCK"
        self.op(proc, "sigprocmask", how, sigset([sig]))
        new = proc.blocked | {sig} if blocked else proc.blocked - {sig}
        effect = proc.set_mask(new)
        assert effect in ("none", HANDLER, IGNORE), f"unblocking {sig} would {effect}"

    def ensure_not_pending(self, proc: Proc, sig) -> None:
        """Discard a pending instance of `sig` with sigaction(SIG_IGN) (one op at most)."""
        if proc.pending[sig]:
            self.op(proc, "sigaction", sig, "SIG_IGN")
            proc.set_action(sig, Action("SIG_IGN"))

    def suspend_mask(self, proc: Proc, wake) -> SigSet:
        """A sigsuspend/ppoll mask that lets only the `wake` signals in: everything blocked or
        pending now stays blocked, plus a few more."""
        wake = set(wake)
        keep = (set(proc.blocked) | proc.pending_signals()) - wake
        extra = self.subset([s for s in GENERIC_SIGNALS if s not in wake], most=2)
        return sigset(keep | set(extra))

    def fatal_for(self, proc: Proc, candidates) -> list:
        """Signals among `candidates` that would kill `proc` if sent now."""
        return [s for s in candidates
                if s not in proc.blocked and proc.effect(s) in (TERM, CORE)]

    # -- processes -----------------------------------------------------------------------

    def fork(self, parent: Proc, ctx: Ctx) -> tuple[str, Proc]:
        """Start a child model; its fork op is emitted by `forked` once its body is built."""
        name = self.fresh("c")
        child = parent.forked(ctx)
        self.live.append(child)
        self.procs_left -= 1
        self.room -= 1  # the fork op itself
        return name, child

    def forked(self, parent: Proc, name: str, child: Proc) -> None:
        """Emit the fork op with the child's body."""
        self.room += 1
        self.op(parent, "fork", binds=(name,), body=tuple(child.body))
        parent.kids[name] = Kid(name, live=True)
        child.done = True

    def reaped(self, parent: Proc, name: str, child: Proc) -> None:
        parent.kids[name].live = False
        if child in self.live:
            self.live.remove(child)

    def child_ctx(self, parent: Proc, *, pipes=(), signals=(), may_block=True,
                  may_fork=True) -> Ctx:
        """The context of a child in a pattern; the parent's reserved things stay reserved."""
        ignores = frozenset(s for s in ("SIGURG", "SIGWINCH")
                            if s not in parent.blocked and parent.effect(s) == IGNORE
                            and s not in signals)
        return Ctx(reserved_pipes=parent.ctx.reserved_pipes | frozenset(pipes),
                   reserved_signals=frozenset(signals) | {"SIGCHLD", "SIGCONT"},
                   may_block=may_block, may_fork=may_fork, parent_ignores=ignores)

    def child_body(self, child: Proc, limit: int) -> None:
        """Free steps for a child (shorter than process 0's); they shrink to none."""
        if limit > 0:
            self.steps(child, limit, stop_odds=3)

    def inert(self, proc: Proc, limit: int, *, quiet: bool = True) -> None:
        """Calls whose results do not depend on what other processes are doing right now."""
        n = 0
        while n < limit and self.room > 0 and self.flip(1, 4):
            options = ["getpid", "getppid", "getpgrp", "getitimer", "sigaltstack"]
            live = proc.live_kids()
            if live:
                options += ["kill0", "getpgid"]
            if quiet:
                options.append("sigpending")
            what = self.pick(options)
            if what == "getitimer":
                self.op(proc, "getitimer", self.pick(("ITIMER_REAL", "ITIMER_VIRTUAL",
                                                      "ITIMER_PROF")))
            elif what == "sigaltstack":
                self.op(proc, "sigaltstack")
            elif what == "kill0":
                self.op(proc, "kill", Ref(self.pick(live)), 0)
            elif what == "getpgid":
                self.op(proc, "getpgid", Ref(self.pick(live)))
            else:
                self.op(proc, what)
            n += 1

    # -- shared pattern pieces -------------------------------------------------------------

    def data(self, most: int = 4096):
        """A write's payload: a short string or N pattern bytes (at most `most`)."""
        if self.flip(1, 3):
            return self.num(1, most)
        return self.draw(_binary(min_size=1, max_size=min(8, most)))

    def wait(self, parent: Proc, name: str, child: Proc, *, flags_from=("WUNTRACED",
             "WCONTINUED")) -> None:
        """Reap a child that will end on its own: waitpid/wait4 on its name or -1."""
        call = self.pick(("waitpid", "wait4"))
        target = Ref(name)
        if parent.live_kids() == [name] and self.flip(1, 4):
            target = -1
        self.op(parent, call, target, flags(call, self.subset(flags_from)))
        self.reaped(parent, name, child)

    def child_end(self, child: Proc, reserve: int) -> None:
        """How a child's body ends: falls off the end, exit(code), or a fatal signal; leaves
        `reserve` ops of room for the rest of the pattern."""
        if self.room <= reserve or child.done:
            return
        how = self.pick(("fall", "exit", "exit", "kill"))
        if how == "exit":
            self.op(child, "exit", self.num(0, 255))
            child.done = True
        elif how == "kill":
            fatal = self.fatal_for(child, ("SIGTERM", "SIGKILL", "SIGUSR1", "SIGINT",
                                           "SIGHUP", 34))
            fatal = [s for s in fatal if s not in child.ctx.reserved_signals]
            if fatal:
                self.op(child, "kill", Ref("self"), self.pick(fatal))
                child.done = True
