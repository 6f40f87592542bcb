"""The predictor: step a Program's processes through the kernel model under many schedules.

Each process runs its ops in order, one op per scheduling step (an op is atomic; a blocked op is
repeated when the process is woken). The driver is scheduled too: its step reaps one zombie
child, so whether an orphan is still a zombie when someone looks is a scheduling choice.
Schedules: fixed priority orders over the logical processes and the driver (the highest-priority
runnable one always runs), plus one round robin. Every distinct outcome is returned.
"""
from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

from conformance.events import DRIVER, Call, Errno, Event, Exit, Expected, Outcome, Pid
from conformance.ir import (
    DATA_RECORD_LIMIT, PARENT, SELF, Flags, Op, Param, Program, Ref, child_lpids,
    process_count, walk, write_payload,
)
from oracle.kernel import Blocked, Done, Kernel
from oracle.profile import LINUX, Profile

_WNOHANG = Flags(("WNOHANG",))
_MAX_STEPS = 200_000  # no program of the IR can run this long; more means a model bug


def predict(program: Program, profile: Profile = LINUX) -> Expected:
    """Every outcome the program may have under the profile, in a deterministic order."""
    plan = _Plan(program)
    outcomes: dict[Outcome, None] = {}
    for order in _priority_orders(plan.count, profile.max_schedules):
        outcomes.setdefault(_Run(plan, profile).run(order, round_robin=False))
    outcomes.setdefault(_Run(plan, profile).run(_identity(plan.count), round_robin=True))
    found = tuple(outcomes)
    notes = (f"schedule-dependent: {len(found)} outcomes",) if len(found) > 1 else ()
    return Expected(outcomes=found, notes=notes)


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


class _Run:
    """One schedule's run: a fresh kernel, the driver, and process 0."""

    def __init__(self, plan: _Plan, profile: Profile):
        self.plan = plan
        self.kernel = Kernel(profile)
        self.driver = self.kernel.spawn_driver()
        first = self.kernel.spawn(self.driver)
        self.procs: dict[int, _Proc] = {0: _Proc(0, first, self.driver, {})}
        self.lpid_of: dict[int, int | str] = {self.driver: DRIVER, first: 0}
        self.reaped: list[tuple[int, object]] = []

    def run(self, order: tuple, round_robin: bool) -> Outcome:
        """Run to the end (or to a hang) and return what was observed."""
        turn = 0
        for _ in range(_MAX_STEPS):
            ready = [e for e in order if self._runnable(e)]
            if not ready:
                break
            if round_robin:
                entity = min(ready, key=lambda e: (order.index(e) - turn) % len(order))
                turn = order.index(entity) + 1
            else:
                entity = ready[0]
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

    def _step(self, entity) -> None:
        if entity == DRIVER:
            self._reap()
            return
        proc, kernel = self.procs[entity], self.kernel
        if proc.outstanding is None or proc.restarting:
            # Signals are taken before user code runs and before an interrupted call restarts;
            # a call woken normally re-checks its condition first, as Linux's wait_event does.
            if kernel.deliver(proc.pid) != "runnable":
                return
            proc.restarting = False
        if proc.unreported is not None:
            # The rest of an op the process was stopped in (or a child's return from fork).
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
        result = kernel.syscall(proc.pid, op.call, args)
        if isinstance(result, Blocked):
            if kernel.runnable(proc.pid):  # interrupted: take the signal, restart later
                proc.restarting = True
                kernel.deliver(proc.pid)
            return
        proc.outstanding = None
        record = self._complete(proc, index, op, result)
        state = kernel.deliver(proc.pid)
        if state == "runnable":
            proc.events.append(record)
        elif state == "stopped":
            proc.unreported = record  # written after SIGCONT, unless it dies first

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
                value = {SELF: proc.pid, PARENT: proc.parent_pid}.get(value.name,
                                                                      proc.names.get(value.name))
            out.append(value)
        return tuple(out)

    def _complete(self, proc: _Proc, index: int, op: Op, result: Done) -> Call:
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
            fds = result.outs if value == 0 else (-1, -1)
            proc.names.update(zip(op.binds, fds))
            return Call(index, value, fds)
        if op.binds:  # dup, dup2: a failed call binds an fd no call accepts
            proc.names[op.binds[0]] = -1 if isinstance(value, Errno) else value
        if op.call in ("getpid", "getppid"):
            return Call(index, Pid(self.lpid_of[value]))
        if op.call in ("waitpid", "wait4") and isinstance(value, int) and value > 0:
            return Call(index, Pid(self.lpid_of[value]), result.outs)
        if op.call == "read" and isinstance(value, int) and value > 0:
            return Call(index, value, data=result.data[:DATA_RECORD_LIMIT])
        return Call(index, value)
