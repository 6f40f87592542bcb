"""Kernel results turned into the records the contract (docs/semantics.md) says a target writes.

The kernel answers with concrete values (kernel pids, exact virtual µs); records use the
vocabulary of `conformance.events`: logical pids, name sets, and one-sided time bounds.
"""
from __future__ import annotations

from typing import Callable

from conformance.events import (
    AltStack, Call, Changed, Errno, Handler, IntRange, Names, Pid, TimeBound,
)
from conformance.ir import DATA_RECORD_LIMIT, SS_FLAGS, Op, Ret
from oracle.process import Done, Frame, Stack
from oracle.profile import Profile
from oracle.timers import REAL, alarm_seconds

PidOf = Callable[[int], Pid]


def call_record(index: int, op: Op, result: Done, pid_of: PidOf, profile: Profile,
                timer_high: int = 0) -> Call:
    """The record of a completed op (fork is the predictor's business: it binds a child).

    `timer_high` is `Kernel.timer_bound` of the timer a setitimer, getitimer or alarm op reads,
    taken just before the op (0 if disarmed)."""
    value, name = result.value, op.call
    ok = not isinstance(value, Errno)
    ret, outs, data = value, (), None
    if op.spec.ret is Ret.PID and ok and value > 0:
        ret = pid_of(value)
    if name in ("pipe", "pipe2"):
        outs = result.outs if ok else (-1, -1)
    elif name in ("waitpid", "wait4") and ok and value > 0:
        outs = result.outs
    elif name == "read" and ok and value > 0:
        data = result.data[:DATA_RECORD_LIMIT]
    elif name == "sigaction" and ok:
        handler, flags, mask = result.outs
        outs = (handler, Names(flags), Names(mask))
    elif name in ("sigprocmask", "sigpending") and ok:
        outs = (Names(result.outs[0]),)
    elif name == "sigaltstack" and ok:
        outs = (alt_stack(result.outs[0]),)
    elif name in ("setitimer", "getitimer") and ok:
        left, interval = result.outs
        slack = 0 if op.args[0] == REAL else profile.cpu_timer_slack_us
        outs = (TimeBound(1, timer_high + slack) if left else TimeBound(0, 0),
                TimeBound(interval, interval))
    elif name == "alarm":
        # Any real remaining time in [1, bound] µs rounds into this range.
        ret = IntRange(alarm_seconds(1), alarm_seconds(timer_high)) if timer_high else 0
    elif name == "nanosleep" and not ok:
        outs = (TimeBound(0, op.args[0] * 1000),)  # the time left, at most what was asked
    elif name in ("poll", "ppoll") and ok:
        outs = tuple(Names(r) for r in result.outs)
    if op.probe:
        outs += (Changed(()),)
    return Call(index, ret, outs, data)


def alt_stack(stack: Stack) -> AltStack:
    """A kernel Stack as sigaltstack's out-value."""
    return AltStack(stack.base, Names(tuple(f for f in SS_FLAGS if f in stack.flags)), stack.size)


def handler_event(frame: Frame, depth: int, query: Stack, change: int | Errno,
                  pid_of: PidOf) -> Handler:
    """The recording handler's event: its sigaltstack query and re-install, its siginfo."""
    info = None
    if "SA_SIGINFO" in frame.flags:
        sender = pid_of(frame.info.pid) if frame.info.pid else 0
        info = (frame.signal, frame.info.code, sender)
    return Handler(frame.signal, depth, frame.on_altstack, True,
                   alt_stack(query).flags, change, info)
