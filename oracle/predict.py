"""The predictor: step a Program's processes through the kernel model under many schedules.

Each process runs its ops in order, one op per scheduling step (an op is atomic; a blocked op is
repeated when the process is woken). A handler invocation runs the recording handler's code one
call per step (sigaltstack query, sigaltstack re-install, the record's write, rt_sigreturn),
each a delivery point, so nested handlers record first. The driver is scheduled too: its step
reaps one zombie child, so whether an orphan is still a zombie when someone looks is a
scheduling choice. When nothing can run, the kernel's clock advances to the next timer event.

Schedules: fixed priority orders over the logical processes and the driver (the highest-priority
runnable one always runs), plus one round robin. Within each, every sequence of the kernel's
open choices (see `Kernel.chooser`) is explored, up to the profile's cap. Every distinct outcome
is returned.

A priority order is skipped when it would pick the same entity as an order already explored at
every step where that order's runs had a choice: the model is deterministic, so its runs, and
their outcomes, would be the same. Most steps have one runnable entity, so most orders of a
three-process program are skipped; the outcomes are those of exploring them all.
"""
from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

from conformance.events import DRIVER, Call, Errno, Event, Exit, Expected, Outcome, Pid
from conformance.ir import (
    PARENT, SELF, TIMERS, Flags, Group, Op, Param, PollFd, Program, Ref, child_lpids,
    process_count, walk, write_payload,
)
from oracle.kernel import Blocked, Done, Frame, Kernel, Stack
from oracle.process import REGION
from oracle.profile import LINUX, Profile
from oracle.records import call_record, handler_event
from oracle.timers import REAL

_WNOHANG = Flags(("WNOHANG",))
_MAX_STEPS = 200_000  # no program of the IR can run this long; more means a model bug


def predict(program: Program, profile: Profile = LINUX) -> Expected:
    """Every outcome the program may have under the profile, in a deterministic order."""
    plan = _Plan(program)
    outcomes: dict[Outcome, None] = {}
    # Per explored order, the choice points of all its runs.
    explored: list[list[tuple[tuple, object]]] = []
    for order in _priority_orders(plan.count, profile.max_schedules):
        if any(_decides_alike(order, points) for points in explored):
            continue
        points: list[tuple[tuple, object]] = []
        for outcome in _explore(plan, profile, order, False, points):
            outcomes.setdefault(outcome)
        explored.append(points)
    # Round robin interleaves processes that were ready together; where none ever were,
    # every order ran alike and it would repeat the first.
    if any(explored):
        for outcome in _explore(plan, profile, _identity(plan.count), True, []):
            outcomes.setdefault(outcome)
    found = tuple(outcomes)
    notes = (f"schedule-dependent: {len(found)} outcomes",) if len(found) > 1 else ()
    return Expected(outcomes=found, notes=notes)


def _decides_alike(order: tuple, points: list[tuple[tuple, object]]) -> bool:
    """Whether `order` picks what was picked at each choice point (ready entities, picked)."""
    rank = {entity: n for n, entity in enumerate(order)}
    return all(min(ready, key=rank.__getitem__) == picked for ready, picked in points)


def _explore(plan: "_Plan", profile: Profile, order: tuple, round_robin: bool,
             points: list[tuple[tuple, object]]):
    """Outcomes of one schedule under every sequence of kernel choices (depth first); appends
    to `points` each step's runnable entities and the one that ran, where there was a choice."""
    prefix: list[int] = []
    for _ in range(profile.max_choice_runs):
        run = _Run(plan, profile, prefix)
        yield run.run(order, round_robin, points)
        trail = run.trail
        while trail and trail[-1][0] + 1 >= trail[-1][1]:
            trail.pop()
        if not trail:
            return
        prefix = [picked for picked, _ in trail[:-1]] + [trail[-1][0] + 1]


class _Plan:
    """What every run needs from the program: each process's ops with their indexes."""

    def __init__(self, program: Program):
        self.count = process_count(program)
        self.bodies: dict[int, list[tuple[int, Op]]] = {n: [] for n in range(self.count)}
        for loc in walk(program):
            self.bodies[loc.lpid].append((loc.index, loc.op))
        self.child_of = child_lpids(program)
        # Pattern payloads are costly to build and identical in every run.
        self.payloads = {loc.index: write_payload(loc.op.args[1])
                         for loc in walk(program) if loc.op.call == "write"}


def _identity(count: int) -> tuple:
    return tuple(range(count)) + (DRIVER,)


def _priority_orders(count: int, cap: int) -> list[tuple]:
    """Identity and reverse order first, then all other orders or a seeded sample of them."""
    ident = _identity(count)
    orders = [ident, ident[::-1]]
    if math.factorial(len(ident)) <= cap:
        orders += [o for o in itertools.permutations(ident) if o not in orders]
        return orders
    rng = random.Random(count)
    while len(orders) < cap:
        order = list(ident)
        rng.shuffle(order)
        if tuple(order) not in orders:
            orders.append(tuple(order))
    return orders


@dataclass(eq=False)
class _HandlerRun:
    """The recording handler running in one frame: which of its calls comes next."""

    frame: Frame
    stage: int = 0                 # 0 query, 1 re-install, 2 record, 3 rt_sigreturn
    query: Stack | None = None
    change: object = 0


@dataclass(eq=False)
class _Proc:
    """A logical process: where it is in its body, its names and what it has recorded."""

    lpid: int
    pid: int                    # kernel pid
    parent_pid: int             # what `parent` names: the forking process, fixed at fork
    names: dict[str, int]       # fd handles and process names (kernel pids)
    pc: int = 0
    events: list[Event] = field(default_factory=list)
    unreported: Event | None = None      # a record written once the process runs again
    outstanding: tuple | None = None     # (index, op, args) of a call that blocked
    restarting: bool = False             # the outstanding call was cut short by a signal
    handlers: list[_HandlerRun] = field(default_factory=list)  # parallel to the kernel frames


class _Run:
    """One run: a fresh kernel, the driver, process 0, and the kernel choices to take."""

    def __init__(self, plan: _Plan, profile: Profile, prefix: list[int] = ()):
        self.plan = plan
        self.profile = profile
        self.prefix = list(prefix)
        self.trail: list[tuple[int, int]] = []  # (option taken, options offered) per choice
        self.kernel = Kernel(profile, chooser=self._choose)
        self.driver = self.kernel.spawn_driver()
        first = self.kernel.spawn(self.driver)
        self.procs: dict[int, _Proc] = {0: _Proc(0, first, self.driver, {})}
        self.lpid_of: dict[int, int | str] = {self.driver: DRIVER, first: 0}
        self.reaped: list[tuple[int, object]] = []

    def _choose(self, options: list):
        k = len(self.trail)
        picked = self.prefix[k] if k < len(self.prefix) else 0
        self.trail.append((picked, len(options)))
        return options[picked]

    def pid_of(self, pid: int) -> Pid:
        """A kernel pid as a record shows it."""
        return Pid(self.lpid_of[pid])

    def run(self, order: tuple, round_robin: bool, points: list) -> Outcome:
        """Run to the end (or to a hang) and return what was observed; choice points go to
        `points`."""
        turn = 0
        for _ in range(_MAX_STEPS):
            ready = [e for e in order if self._runnable(e)]
            if not ready:
                if self.kernel.advance():
                    continue
                break
            if round_robin:
                entity = min(ready, key=lambda e: (order.index(e) - turn) % len(order))
                turn = order.index(entity) + 1
            else:
                entity = ready[0]
            if len(ready) > 1:
                points.append((tuple(ready), entity))
            self._step(entity)
        else:
            raise RuntimeError("schedule did not finish: the kernel model loops")
        hung = bool(self.kernel.live())
        if hung:
            self.kernel.kill_all()
            while self._runnable(DRIVER):
                self._reap()
        procs = tuple((n, tuple(p.events)) for n, p in sorted(self.procs.items()) if p.events)
        return Outcome(procs=procs, reaped=tuple(sorted(self.reaped)), hung=hung)

    def _runnable(self, entity) -> bool:
        if entity == DRIVER:
            return any(self.kernel.state(c) == "zombie" for c in self.kernel.children(self.driver))
        proc = self.procs.get(entity)
        return proc is not None and self.kernel.runnable(proc.pid)

    def _reap(self) -> None:
        done = self.kernel.syscall(self.driver, "waitpid", (-1, _WNOHANG))
        self.reaped.append((self.lpid_of[done.value], done.outs[0]))

    def _to_user(self, proc: _Proc) -> bool:
        """Return to user mode: take signals, start handler runs; whether the process runs on."""
        frames = self.kernel.deliver(proc.pid)
        proc.handlers += [_HandlerRun(f) for f in frames]
        if not self.kernel.procs[proc.pid].frames:
            proc.handlers = []  # frames vanish only when the process dies
        return self.kernel.runnable(proc.pid)

    def _step(self, entity) -> None:
        if entity == DRIVER:
            self._reap()
            return
        proc, kernel = self.procs[entity], self.kernel
        # Signals are taken before user code runs and before an interrupted call restarts;
        # a call woken normally re-checks its condition first, as Linux's wait_event does.
        woken = proc.outstanding is not None and not proc.restarting and not proc.handlers
        if not woken and not self._to_user(proc):
            return
        if proc.handlers:
            self._handler_step(proc)
            return
        proc.restarting = False
        if proc.unreported is not None:
            # The rest of an op the process was stopped in or ran handlers after (or a child's
            # return from fork).
            proc.events.append(proc.unreported)
            proc.unreported = None
            return
        if proc.outstanding is None:
            body = self.plan.bodies[proc.lpid]
            if proc.pc == len(body):
                self._exit(proc, 0)
                return
            index, op = body[proc.pc]
            proc.pc += 1
            if op.call == "exit":
                self._exit(proc, op.args[0])
                return
            proc.outstanding = (index, op, self._args(proc, index, op))
        index, op, args = proc.outstanding
        timer_high = 0
        if op.call in ("setitimer", "getitimer", "alarm") and (op.call == "alarm"
                                                                or args[0] in TIMERS):
            timer_high = kernel.timer_bound(proc.pid, REAL if op.call == "alarm" else args[0])
        result = kernel.syscall(proc.pid, op.call, args)
        if isinstance(result, Blocked):
            if kernel.runnable(proc.pid):  # interrupted: take the signal, finish it later
                proc.restarting = True
                self._to_user(proc)
            return
        proc.outstanding = None
        record = self._complete(proc, index, op, result, timer_high)
        if not self._to_user(proc):
            if kernel.state(proc.pid) == "stopped":
                proc.unreported = record  # written after SIGCONT, unless it dies first
        elif proc.handlers:
            proc.unreported = record  # written once the handlers have returned
        else:
            proc.events.append(record)

    def _handler_step(self, proc: _Proc) -> None:
        """One call of the recording handler in the newest frame, then a delivery point."""
        run, kernel = proc.handlers[-1], self.kernel
        if run.stage == 0:
            run.query = kernel.syscall(proc.pid, "sigaltstack", (None,)).outs[0]
        elif run.stage == 1:
            run.change = kernel.syscall(proc.pid, "sigaltstack", (run.query,)).value
        elif run.stage == 2:
            kernel.syscall(proc.pid, "write", (1, b"H"))
            proc.events.append(handler_event(run.frame, kernel.handler_depth(proc.pid),
                                             run.query, run.change, self.pid_of))
        else:
            kernel.syscall(proc.pid, "rt_sigreturn")
            proc.handlers.pop()
        run.stage += 1
        self._to_user(proc)

    def _exit(self, proc: _Proc, code: int) -> None:
        proc.events.append(Exit(code))
        self.kernel.exit_process(proc.pid, code)

    def _args(self, proc: _Proc, index: int, op: Op) -> tuple:
        """The op's operands as kernel arguments: fds and pids as ints, payloads as bytes."""
        out = []
        for param, value in zip(op.spec.params, op.args):
            if param is Param.DATA:
                value = self.plan.payloads[index]
            elif isinstance(value, Ref):
                value = self._resolve(proc, value)
            elif isinstance(value, Group):
                value = -self._resolve(proc, Ref(value.name))
            elif param is Param.POLLFDS:
                value = tuple(PollFd(self._resolve(proc, e.fd) if isinstance(e.fd, Ref)
                                     else e.fd, e.events) for e in value)
            out.append(value)
        if op.call == "sigaltstack":
            size, flags = out
            return (None,) if size is None else (
                Stack(REGION, size, frozenset(flags.names), flags.bits),)
        return tuple(out)

    @staticmethod
    def _resolve(proc: _Proc, ref: Ref) -> int:
        return {SELF: proc.pid, PARENT: proc.parent_pid}.get(ref.name, proc.names.get(ref.name))

    def _complete(self, proc: _Proc, index: int, op: Op, result: Done, timer_high: int) -> Call:
        """Bind the names the op binds and build its record."""
        value = result.value
        if op.call == "fork":
            child_lpid = self.plan.child_of[index]
            child = _Proc(child_lpid, value, proc.pid, dict(proc.names))
            child.unreported = Call(index, 0)  # written when the child first runs
            self.procs[child_lpid] = child
            self.lpid_of[value] = child_lpid
            proc.names[op.binds[0]] = value
            return Call(index, Pid(child_lpid))
        if op.call in ("pipe", "pipe2"):
            proc.names.update(zip(op.binds, result.outs if value == 0 else (-1, -1)))
        elif op.binds:  # dup, dup2: a failed call binds an fd no call accepts
            proc.names[op.binds[0]] = -1 if isinstance(value, Errno) else value
        return call_record(index, op, result, self.pid_of, self.profile, timer_high)
