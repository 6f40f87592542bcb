"""Asynchronous signal injection: a signal at every instruction boundary of a program's ops.

The reference machine runs a program once to count the instructions it executes in the code
of its ops (every process, in execution order: the machine is deterministic, so the k-th such
instruction is the same one in every run up to it), then once per injection point k, sending
the signal just before that instruction executes. The oracle cannot predict a signal at an
arbitrary instruction, but a handler that runs and returns must leave no trace but its own
record. So each injected run must produce the uninjected run's records exactly, plus the
injected handler's one (which takes a sequence number: later ones of that process shift by
one), with the same exit; every `probe` among them must still find its registers intact. The
uninjected run itself is judged against the oracle.

Choices, and why:
- Only a program that installs the recording `handler` for the signal is swept: a handler the
  harness installed would add a sigaction the program never made (and change what its own
  sigaction reports as the old action); a default action would end or stop it.
- A point is skipped when the model would not run the handler there at once (no handler
  installed yet, the signal blocked, inside a handler) or running it would change what follows
  (SA_RESETHAND resets the action), and where the process's record identity is not yet its
  own (a child between fork's return and its prologue still writes as its parent).
- Programs with `spin()` are not swept: spin waits for any handler to run, so an injected one
  ends it early, which is what it is meant to do.
- The injected handler runs without being preempted: its record write would otherwise let the
  scheduler switch processes in the middle of an op, a different (legal) schedule, not a bug.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from conformance import trace
from conformance.batch import build
from conformance.compare import AGREES, judge
from conformance.ir import Program, child_lpids, walk
from conformance.lower import NO_FAULTS, Faults, Memory
from oracle import predict
from oracle.signals import DEFAULT, HANDLER, SigInfo
from targets.runners.reference.codemap import CodeMap, Line
from targets.runners.reference.machine import Machine
from targets.tables import Abi

TIMEOUT = 60.0


@dataclass(frozen=True)
class Point:
    """One instruction boundary: the `index`-th instruction executed in some op's code."""

    index: int
    pid: int
    address: int
    size: int
    skip: str = ""      # why no signal is injected here ("" when one is)


@dataclass(frozen=True)
class Break:
    """An injection point after which the run was not the uninjected one."""

    point: Point
    line: Line | None
    bytes: bytes
    detail: str


@dataclass
class Sweep:
    """What sweeping one program on one ISA found."""

    program: str
    isa: str
    not_sweepable: str = ""             # why the program was not swept at all
    points: int = 0                     # instruction boundaries in its ops, every process
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> points
    swept: int = 0
    breaks: list[Break] = field(default_factory=list)
    baseline: str = ""                  # the uninjected run's verdict against the oracle
    seconds: float = 0.0


def not_sweepable(program: Program, signal: str) -> str:
    """Why `program` cannot be swept with `signal` ("" if it can)."""
    calls = [loc.op for loc in walk(program)]
    if any(op.call == "spin" for op in calls):
        return "spin() ends when any handler runs"
    if not any(op.call == "sigaction" and op.args[0] == signal and op.args[1] == "handler"
               for op in calls):
        return f"installs no recording handler for {signal}"
    return ""


class InjectingMachine(Machine):
    """A Machine that lists the op instructions it executes and sends `signal` before the
    `at`-th of them (never, with None)."""

    def __init__(self, elf: bytes, abi: Abi, code: CodeMap, program: Program, signal: str,
                 at: int | None = None, **options):
        super().__init__(elf, abi, **options)
        self.signal, self.at = signal, at
        self.op_at = code.ops()                  # address -> op index
        self.region = (min(self.op_at), code.end)
        self.child_lpid = child_lpids(program)
        self.lpids: dict[int, int] = {}          # pid -> the logical process it is
        self.points: list[Point] = []
        self.injected: tuple[int, int, int] | None = None  # (prog, lpid, seq) of its record
        self.held, self.held_depth = None, 0
        self._repeat_pc: int | None = None
        self.procs[self.driver].cpu.watch(*self.region, self._on_op)

    def _on_op(self, cpu, address: int, size: int) -> None:
        if self.injected is not None or address not in self.op_at:
            return
        if address == self._repeat_pc:
            self._repeat_pc = None
            return  # a blocked call, repeated: the same boundary as its first attempt
        proc = self.current
        point = Point(len(self.points), proc.pid, address, size, self._skip(proc))
        self.points.append(point)
        if point.index == self.at:
            cpu.interrupt(address)

    def _skip(self, proc) -> str:
        p = self.kernel.procs[proc.pid]
        action = p.actions.get(self.signal, DEFAULT)
        if action.handler != HANDLER:
            return "no handler installed"
        if self.signal in p.blocked:
            return "signal blocked"
        if "SA_RESETHAND" in action.flags:
            return "SA_RESETHAND"
        if p.frames:
            return "inside a handler"
        if proc.cpu.u(Memory.CUR_LPID) != self.lpids.get(proc.pid):
            return "records still the parent's (after fork)"
        return ""

    def _enter(self, proc) -> bool:
        self._repeat_pc = proc.cpu.get(self.isa.pc) if proc.repeat else None
        return super()._enter(proc)

    def interrupted(self, proc, stop) -> None:
        cpu = proc.cpu
        self.injected = (cpu.u(Memory.CUR_PROG), cpu.u(Memory.CUR_LPID), cpu.u(Memory.CUR_SEQ))
        self.kernel.send_signal(proc.pid, self.signal, SigInfo(self.signal, "SI_USER", 0))
        self.held, self.held_depth = proc, proc.depth
        self.signals.deliver(proc)

    def _trap(self, proc, stop) -> None:
        super()._trap(proc, stop)
        if self.held is proc:
            if proc.depth <= self.held_depth:
                self.held = None            # the injected handler returned
            elif self.kernel.runnable(proc.pid):
                self.current = proc         # not preempted (see the module docstring)

    def forked(self, parent, child: int) -> int:
        pid = super().forked(parent, child)
        self.procs[child].cpu.watch(*self.region, self._on_op)
        if parent.pid == self.driver:
            self.lpids[child] = 0
        else:
            fork_op = self.op_at.get(parent.cpu.get(self.isa.pc) - self.trap.length)
            self.lpids[child] = self.child_lpid.get(fork_op, -1)
        return pid


def _records(stdout: bytes, drop: tuple[int, int, int] | None = None):
    """Every record as (prog, lpid, kind, fields, data), per process, without `drop`'s."""
    parsed = trace.parse(stdout)
    out = []
    for index, prog in sorted(parsed.programs.items()):
        for lpid, records in sorted(prog.procs.items()):
            out += [(index, lpid, r.kind, r.fields, r.data) for r in records
                    if (index, lpid, r.seq) != drop]
        out += [(index, "driver", r.kind, r.fields, r.data) for r in prog.driver]
    return out, parsed


def _difference(expected: list, result, machine: InjectingMachine, signo: int) -> str:
    """How an injected run differs from the uninjected one ("" if it does not)."""
    if machine.injected is None:
        return "the injection point was never reached"
    observed, parsed = _records(result.stdout, machine.injected)
    prog, lpid, seq = machine.injected
    own = [r for r in parsed.program(prog).procs.get(lpid, []) if r.seq == seq]
    if not own or own[0].kind != "S" or own[0].fields[0] != signo:
        return f"the injected handler left no record (p{lpid} seq {seq}: {own[:1]})"
    if parsed.problems or parsed.program(prog).problems:
        return "; ".join(parsed.problems + parsed.program(prog).problems)
    for k, (want, got) in enumerate(zip(expected, observed)):
        if want != got:
            return f"record {k} differs: expected {_show(want)}, got {_show(got)}"
    if len(expected) != len(observed):
        extra = (observed or expected)[min(len(expected), len(observed)):][:1]
        return (f"{len(observed)} records instead of {len(expected)} "
                f"(first unmatched: {_show(extra[0]) if extra else '-'})")
    return ""


def _show(record) -> str:
    prog, lpid, kind, fields, data = record
    who = "driver" if lpid == "driver" else f"p{lpid}"
    text = ",".join(f"{f:#x}" if abs(f) > 0xFFFF else str(f) for f in fields)
    return f"{who} {kind}({text}){'' if data is None else ' ' + data.hex()}"


def sweep(program: Program, abi: Abi, signal: str = "SIGUSR1", *, every: int = 1,
          faults: Faults = NO_FAULTS, sigreturn_skips: tuple[str, ...] = (),
          timeout: float = TIMEOUT, first_only: bool = False) -> Sweep:
    """Inject `signal` at every `every`-th eligible point of `program` (see the module
    docstring); `first_only` stops at the first point that breaks the invariant."""
    start = time.monotonic()
    result = Sweep(program.name, abi.isa, not_sweepable(program, signal))
    if result.not_sweepable:
        return result
    batch = build([program], abi, faults=faults)
    code = CodeMap(batch)
    options = {"sigreturn_skips": sigreturn_skips}
    plain = InjectingMachine(batch.elf, abi, code, program, signal, **options)
    ran = plain.run(timeout)
    expected, parsed = _records(ran.stdout)
    verdict = judge(program, 0, parsed.program(0), predict(program), abi, parsed.driver_pid,
                    parsed.handlers)
    result.baseline = verdict.status if verdict.status == AGREES else \
        f"{verdict.status}: {verdict.detail}"
    result.points = len(plain.points)
    for point in plain.points:
        if point.skip:
            result.skipped[point.skip] = result.skipped.get(point.skip, 0) + 1
    chosen = [p for p in plain.points if not p.skip][::every]
    signo = abi.signals[signal]
    for point in chosen:
        machine = InjectingMachine(batch.elf, abi, code, program, signal, at=point.index,
                                   **options)
        detail = _difference(expected, machine.run(timeout), machine, signo)
        result.swept += 1
        if detail:
            result.breaks.append(Break(point, code.at(point.address),
                                       code.bytes_at(point.address, point.size), detail))
            if first_only:
                break
    result.seconds = time.monotonic() - start
    return result


def describe(s: Sweep, target: str = "") -> list[str]:
    """A sweep as report lines (headed by `target`, or the ISA)."""
    head = f"{target or s.isa} {s.program}: "
    if s.not_sweepable:
        return [head + f"not sweepable ({s.not_sweepable})"]
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(s.skipped.items()))
    lines = [head + f"{s.swept} points swept of {s.points} ({skipped or 'none skipped'}), "
             f"{len(s.breaks)} broke the invariant; uninjected run: {s.baseline}; "
             f"{s.seconds:.1f} s"]
    if s.breaks:
        b = s.breaks[0]
        where = (f"op {b.line.op} ({b.line.op_text}), after label {b.line.label}: "
                 f"`{b.line.text}`" if b.line else "no listing line")
        lines.append(f"    first at point {b.point.index} (pid {b.point.pid}): "
                     f"{b.point.address:#x} [{b.bytes.hex(' ')}] {where}")
        lines.append(f"    {b.detail}")
    return lines
