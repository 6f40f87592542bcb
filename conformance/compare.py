"""Normalise a program's raw records through the ABI table, then judge them against the oracle.

Normalising turns numbers into the oracle's vocabulary: -errno into `Errno("EBADF")`, pids
into logical ids (from the driver's fork records and each parent's fork records), wait
statuses into `WaitStatus` with signal names. A divergence names the program, the process,
the op, and the expected and observed values.
"""
from __future__ import annotations

from dataclasses import dataclass

from conformance.events import (
    DRIVER, AltStack, Call, Changed, Errno, Event, Exit, Expected, Handler, Micros, Names,
    Outcome, Pid, UnknownPid, WaitStatus, event_matches,
)
from conformance.ir import (
    POLL_EVENTS, SA_FLAGS, SS_FLAGS, Program, Ret, StackSize, ops_by_index,
)
from conformance.lower import Memory
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


# Raw record fields each kind of out-parameter takes.
OUT_WIDTH = {"fd": 1, "wstatus": 1, "handler": 1, "saflags": 1, "sigset": 1, "stack": 3,
             "time": 2, "timespec": 2, "revents": 1}


@dataclass
class Normaliser:
    """Turns one program's raw records into events, using the program's IR and the ABI."""

    program: Program
    abi: Abi
    driver_pid: int | None
    handlers: tuple[int, ...] = ()

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
                if len(rec.fields) > 1 and rec.fields[1] > 0:
                    self.pids[rec.fields[1]] = DRIVER  # the lane that ran the program
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

    def names(self, value: int, names, table) -> Names:
        """Named bits of `value` (in `names` order) plus the bits left over."""
        found = tuple(n for n in names if value & table[n])
        rest = value
        for n in found:
            rest &= ~table[n]
        return Names(found, rest)

    def sigset(self, mask: int) -> Names:
        """A kernel sigset as signal names (standard) and numbers (realtime)."""
        members = []
        for bit in range(64):
            if mask >> bit & 1:
                members.append(self.abi.signal_name(bit + 1) or bit + 1)
        return Names(tuple(members))

    def stack_size(self, size: int):
        limits = self.abi.limits
        if size == limits["SIGSTKSZ"]:
            return StackSize("SIGSTKSZ")
        if size and abs(size - limits["MINSIGSTKSZ"]) <= 16:
            return StackSize("MINSIGSTKSZ", size - limits["MINSIGSTKSZ"])
        return size

    def out(self, kind: str, raw: tuple[int, ...]):
        """One out-parameter from its raw fields."""
        abi = self.abi
        if kind == "wstatus":
            return self.decode_status(raw[0], abi)
        if kind == "handler":
            names = {0: "SIG_DFL", 1: "SIG_IGN"}
            names.update({addr: "handler" for addr in self.handlers})
            return names.get(raw[0], hex(raw[0]))
        if kind == "saflags":
            found = self.names(raw[0], SA_FLAGS, abi.flags)
            return Names(found.names, found.unknown & ~abi.const("SA_RESTORER"))
        if kind == "sigset":
            return self.sigset(raw[0])
        if kind == "stack":
            base = "region" if raw[0] == Memory.ALTSTACK else raw[0]
            return AltStack(base, self.names(raw[1] & 0xFFFFFFFF, SS_FLAGS, abi.flags),
                            self.stack_size(raw[2]))
        if kind == "time":
            return Micros(raw[0] * 1_000_000 + raw[1])
        if kind == "timespec":
            return Micros(raw[0] * 1_000_000 + raw[1] // 1000)
        if kind == "revents":
            return self.names(raw[0], POLL_EVENTS, abi.flags)
        return raw[0]

    def changed(self, gpr_mask: int, simd_mask: int) -> Changed:
        """The registers a probe found changed."""
        regs = [r for i, r in enumerate(self.abi.probe_gprs) if gpr_mask >> i & 1]
        regs += [r for i, r in enumerate(self.abi.probe_simd) if simd_mask >> i & 1]
        return Changed(tuple(regs))

    def handler_event(self, rec: RawRecord) -> Handler | str:
        """A record of the recording handler."""
        f = rec.fields
        if len(f) not in (6, 9):
            return f"handler record with {len(f)} fields"
        signal = self.abi.signal_name(f[0]) or f[0]
        info = None
        if len(f) == 9:
            info_signal = self.abi.signal_name(f[6]) or f[6]
            code = self.abi.si_code_name(f[7], info_signal) or f[7]
            info = (info_signal, code, self.pid(f[8]) if f[8] > 0 else f[8])
        return Handler(signal, f[1], bool(f[2]), f[3] == self.abi.limits["handler_sp_mod16"],
                       self.names(f[4] & 0xFFFFFFFF, SS_FLAGS, self.abi.flags),
                       self.ret(f[5], Ret.INT), info)

    def event(self, rec: RawRecord) -> Event | str:
        """The event a record stands for, or a problem description."""
        if rec.kind == "E" and len(rec.fields) == 1:
            return Exit(rec.fields[0])
        if rec.kind == "F" and len(rec.fields) == 3:
            return Call(rec.fields[0], self.ret(rec.fields[1], Ret.PID))
        if rec.kind == "S":
            return self.handler_event(rec)
        if rec.kind != "R" or len(rec.fields) < 2:
            return f"record kind {rec.kind!r} with {len(rec.fields)} fields is not a process record"
        loc = self.ops.get(rec.fields[0])
        if loc is None:
            return f"record names op {rec.fields[0]}, which the program does not have"
        op, spec = loc.op, loc.op.spec
        ret = self.ret(rec.fields[1], spec.ret)
        kinds = list(spec.outs)
        if kinds == ["revents"]:
            kinds = kinds * len(op.args[0])
        raw = list(rec.fields[2:])
        want = sum(OUT_WIDTH[k] for k in kinds) + (2 if op.probe else 0)
        if len(raw) != want:
            return f"op {rec.fields[0]} ({spec.name}) has {len(raw)} out-fields, expected {want}"
        outs = []
        meaningful = {"always": True, "ok": not isinstance(ret, Errno),
                      "pid": isinstance(ret, (Pid, UnknownPid)),
                      "eintr": ret == Errno("EINTR")}[spec.outs_when]
        for kind in kinds:
            width = OUT_WIDTH[kind]
            value, raw = raw[:width], raw[width:]
            if meaningful:
                outs.append(self.out(kind, tuple(value)))
        if op.probe:
            outs.append(self.changed(raw[0], raw[1]))
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
    stability: str = ""  # after reruns: "k/n plain, k/n perturbed: <class>"


def describe(value) -> str:
    """An event or value in words."""
    if value is None:
        return "nothing (no further record)"
    if isinstance(value, Exit):
        return f"exit({value.code})"
    if isinstance(value, Handler):
        text = (f"handler({value.signal}, depth {value.depth}, "
                f"{'on' if value.on_altstack else 'off'} the alternate stack, "
                f"{'aligned' if value.aligned else 'MISALIGNED'} sp, ss_flags={value.ss_flags}, "
                f"re-set -> {value.change}")
        if value.info is not None:
            signo, code, pid = value.info
            text += f", si_signo={signo} si_code={code} si_pid={pid}"
        return text + ")"
    if isinstance(value, Call):
        text = str(value.ret)
        if value.outs:
            text += " [" + ", ".join(str(o) for o in value.outs) + "]"
        if value.data is not None:
            text += f" data={value.data!r}"
        return text
    return str(value)


def observe(program: Program, trace: ProgramTrace, abi: Abi, driver_pid: int | None,
            handlers: tuple[int, ...] = ()) -> tuple[Outcome, list[str]]:
    """The normalised outcome of one program's trace, and any problems found on the way."""
    norm = Normaliser(program, abi, driver_pid, handlers)
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
            if ref is None:  # a handler event: name the op whose record follows it
                ref = next((x for x in (exp[pos:] + obs[pos:]) if isinstance(x, Call)), None)
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
          driver_pid: int | None, handlers: tuple[int, ...] = ()) -> Verdict:
    """The verdict for one program of a batch on one target."""
    if not trace.started:
        return Verdict(program, index, TARGET_ERROR, "the program never started (no record "
                       "from the harness for it)", problems=tuple(trace.problems))
    observed, problems = observe(program, trace, abi, driver_pid, handlers)
    if problems:
        return Verdict(program, index, TARGET_ERROR, "; ".join(problems[:3]), observed=observed,
                       problems=tuple(problems))
    if not trace.finished:
        return Verdict(program, index, CRASHED, "the harness never reported the program's end "
                       "(the batch died or was cut off)", observed=observed)
    return assess(program, index, expected, observed)


def assess(program: Program, index: int, expected: Expected, observed: Outcome) -> Verdict:
    """The verdict for a complete observed outcome: agrees, or its closest difference."""
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
