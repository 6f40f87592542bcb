"""Normalise a program's raw records through the ABI table, then judge them against the oracle.

Normalising turns numbers into the oracle's vocabulary: -errno into `Errno("EBADF")`, pids
into logical ids (from the driver's fork records and each parent's fork records), wait
statuses into `WaitStatus` with signal names. A divergence names the program, the process,
the op, and the expected and observed values.
"""
from __future__ import annotations

from dataclasses import dataclass

from conformance.events import (
    DRIVER, Call, Errno, Event, Exit, Expected, Outcome, Pid, UnknownPid, WaitStatus,
    event_matches,
)
from conformance.ir import Program, Ret, ops_by_index
from conformance.syntax import format_op
from conformance.trace import ProgramTrace, RawRecord
from targets.tables import Abi

AGREES, DIVERGES, HUNG, CRASHED, TARGET_ERROR = "agrees", "diverges", "hung", "crashed", "target error"
VERDICTS = (AGREES, DIVERGES, HUNG, CRASHED, TARGET_ERROR)


def decode_linux_wait_status(status: int, abi: Abi) -> WaitStatus:
    """A Linux wait status word as a WaitStatus (the encoding is the same on every Linux ABI)."""
    status &= 0xFFFF
    low = status & 0x7F
    if status == 0xFFFF:
        return WaitStatus("continued")
    if status & 0xFF == 0x7F:
        return WaitStatus("stopped", _signal(abi, status >> 8))
    if low == 0:
        return WaitStatus("exited", status >> 8)
    return WaitStatus("killed", _signal(abi, low), bool(status & 0x80))


WAIT_STATUS_DECODERS = {"linux": decode_linux_wait_status}


def _signal(abi: Abi, number: int) -> str | int:
    return abi.signal_name(number) or number


@dataclass
class Normaliser:
    """Turns one program's raw records into events, using the program's IR and the ABI."""

    program: Program
    abi: Abi
    driver_pid: int | None

    def __post_init__(self):
        try:
            self.decode_status = WAIT_STATUS_DECODERS[self.abi.os]
        except KeyError:
            raise ValueError(f"no wait-status decoder for OS {self.abi.os!r}") from None
        self.ops = ops_by_index(self.program)
        self.pids: dict[int, int | str] = {}
        if self.driver_pid is not None:
            self.pids[self.driver_pid] = DRIVER

    def learn_pids(self, trace: ProgramTrace) -> None:
        """Read every fork record: real pid -> logical id."""
        for rec in trace.driver:
            if rec.kind == "G" and rec.fields and rec.fields[0] > 0:
                self.pids[rec.fields[0]] = 0
        for recs in trace.procs.values():
            for rec in recs:
                if rec.kind == "F" and len(rec.fields) == 3 and rec.fields[1] > 0:
                    self.pids[rec.fields[1]] = rec.fields[2]

    def ret(self, value: int, kind: Ret):
        limit = self.abi.limits.get("errno_max", 4095)
        if -limit <= value < 0:
            return Errno(self.abi.errno_name(-value) or f"errno {-value}")
        if kind is Ret.PID and value > 0:
            return self.pid(value)
        return value

    def pid(self, value: int) -> Pid | UnknownPid:
        lpid = self.pids.get(value)
        return UnknownPid(value) if lpid is None else Pid(lpid)

    def event(self, rec: RawRecord) -> Event | str:
        """The event a record stands for, or a problem description."""
        if rec.kind == "E" and len(rec.fields) == 1:
            return Exit(rec.fields[0])
        if rec.kind == "F" and len(rec.fields) == 3:
            return Call(rec.fields[0], self.ret(rec.fields[1], Ret.PID))
        if rec.kind != "R" or len(rec.fields) < 2:
            return f"record kind {rec.kind!r} with {len(rec.fields)} fields is not a process record"
        loc = self.ops.get(rec.fields[0])
        if loc is None:
            return f"record names op {rec.fields[0]}, which the program does not have"
        spec = loc.op.spec
        ret = self.ret(rec.fields[1], spec.ret)
        raw_outs = rec.fields[2:]
        if len(raw_outs) != len(spec.outs):
            return f"op {rec.fields[0]} ({spec.name}) has {len(raw_outs)} out-fields, expected {len(spec.outs)}"
        outs = []
        for kind, value in zip(spec.outs, raw_outs):
            if kind == "wstatus":
                if isinstance(ret, (Pid, UnknownPid)):
                    outs.append(self.decode_status(value, self.abi))
            else:
                outs.append(value)
        return Call(rec.fields[0], ret, tuple(outs), rec.data)


@dataclass(frozen=True)
class Difference:
    """The first place where observation and expectation part."""

    lpid: int | str
    position: int
    expected: Event | str | None
    observed: Event | str | None
    op_text: str = ""

    def describe(self) -> str:
        """One sentence: where, what was expected, what was seen."""
        where = "the harness" if self.lpid == DRIVER else f"p{self.lpid}"
        op = f" at `{self.op_text}`" if self.op_text else ""
        return (f"{where}, record {self.position}{op}: expected {describe(self.expected)}, "
                f"observed {describe(self.observed)}")


@dataclass(frozen=True)
class Verdict:
    """The judgement of one program on one target."""

    program: Program
    index: int
    status: str
    detail: str = ""
    difference: Difference | None = None
    observed: Outcome | None = None
    problems: tuple[str, ...] = ()


def describe(value) -> str:
    """An event or value in words."""
    if value is None:
        return "nothing (no further record)"
    if isinstance(value, Exit):
        return f"exit({value.code})"
    if isinstance(value, Call):
        text = str(value.ret)
        if value.outs:
            text += " [" + ", ".join(str(o) for o in value.outs) + "]"
        if value.data is not None:
            text += f" data={value.data!r}"
        return text
    return str(value)


def observe(program: Program, trace: ProgramTrace, abi: Abi, driver_pid: int | None
            ) -> tuple[Outcome, list[str]]:
    """The normalised outcome of one program's trace, and any problems found on the way."""
    norm = Normaliser(program, abi, driver_pid)
    norm.learn_pids(trace)
    problems = list(trace.problems)
    procs = []
    for lpid in sorted(trace.procs):
        events = []
        for rec in trace.procs[lpid]:
            event = norm.event(rec)
            if isinstance(event, str):
                problems.append(f"p{lpid} line {rec.line}: {event}")
            else:
                events.append(event)
        procs.append((lpid, tuple(events)))
    reaped = []
    for rec in trace.driver:
        if rec.kind == "Z" and len(rec.fields) == 2 and rec.fields[0] > 0:
            who = norm.pid(rec.fields[0])
            status = norm.decode_status(rec.fields[1], abi)
            if isinstance(who, Pid):
                reaped.append((who.lpid, status))
            else:
                problems.append(f"the harness reaped {who}, which is no process of the program")
    return Outcome(tuple(procs), tuple(sorted(reaped, key=lambda x: x[0])), trace.hung), problems


def _first_difference(program: Program, expected: Outcome, observed: Outcome
                      ) -> tuple[int, Difference | None]:
    """(number of matching records, first difference) of one allowed outcome."""
    ops = ops_by_index(program)
    matched = 0
    lpids = sorted({lpid for lpid, _ in expected.procs} | {lpid for lpid, _ in observed.procs})
    for lpid in lpids:
        exp, obs = expected.events(lpid), observed.events(lpid)
        for pos in range(max(len(exp), len(obs))):
            e = exp[pos] if pos < len(exp) else None
            o = obs[pos] if pos < len(obs) else None
            if e is not None and o is not None and event_matches(e, o):
                matched += 1
                continue
            ref = e if isinstance(e, Call) else o if isinstance(o, Call) else None
            text = format_op(ops[ref.op].op)[0].strip() if ref is not None and ref.op in ops else ""
            return matched, Difference(lpid, pos, e, o, text)
    exp_reaped, obs_reaped = dict(expected.reaped), dict(observed.reaped)
    for lpid in sorted(set(exp_reaped) | set(obs_reaped)):
        e, o = exp_reaped.get(lpid), obs_reaped.get(lpid)
        if e is None or o is None or not e.matches(o):
            return matched, Difference(DRIVER, 0, f"p{lpid} reaped as {e}" if e else f"p{lpid} not reaped by the harness",
                                       f"p{lpid} reaped as {o}" if o else f"p{lpid} not reaped by the harness")
        matched += 1
    if expected.hung != observed.hung:
        return matched, Difference(DRIVER, 0, "a hang" if expected.hung else "no hang",
                                   "a hang (watchdog fired)" if observed.hung else "no hang")
    return matched, None


def judge(program: Program, index: int, trace: ProgramTrace, expected: Expected, abi: Abi,
          driver_pid: int | None) -> Verdict:
    """The verdict for one program of a batch on one target."""
    if not trace.started:
        return Verdict(program, index, TARGET_ERROR, "the program never started (no record "
                       "from the harness for it)", problems=tuple(trace.problems))
    observed, problems = observe(program, trace, abi, driver_pid)
    if problems:
        return Verdict(program, index, TARGET_ERROR, "; ".join(problems[:3]), observed=observed,
                       problems=tuple(problems))
    if not trace.finished:
        return Verdict(program, index, CRASHED, "the harness never reported the program's end "
                       "(the batch died or was cut off)", observed=observed)
    best: tuple[int, Difference | None] | None = None
    for outcome in expected.outcomes:
        matched, diff = _first_difference(program, outcome, observed)
        if diff is None:
            return Verdict(program, index, AGREES, observed=observed)
        if best is None or matched > best[0]:
            best = (matched, diff)
    assert best is not None and best[1] is not None
    diff = best[1]
    allowed = f" (none of the {len(expected.outcomes)} allowed outcomes)" if len(expected.outcomes) > 1 else ""
    status = HUNG if observed.hung and not any(o.hung for o in expected.outcomes) else DIVERGES
    return Verdict(program, index, status, diff.describe() + allowed, diff, observed)
