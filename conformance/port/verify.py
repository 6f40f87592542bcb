"""Does the lifted program mean what the original did? The oracle's prediction against the run.

The lifted program's expectation is the oracle's prediction; the original's behaviour is its
recorded run. They must agree on every result the path relied on (each lifted call's return
value, the bytes a read returned, wait statuses, poll revents, timer values within the
oracle's one-sided bounds, the old alternate stack's flags and size), on how many times a
signal handler ran, on the bytes written to fd 1, and on the exit status. A disagreement means
the port changed the test's meaning (or the model and the original disagree), and the report
says where.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from conformance.compare import decode_linux_wait_status
from conformance.events import (
    DRIVER, AltStack, Call, Errno, Expected, Handler, Micros, Names, Outcome, Pid, TimeBound,
    WaitStatus, _value_matches,
)
from conformance.ir import DATA_RECORD_LIMIT, POLL_EVENTS, SS_FLAGS
from conformance.port.lift import Lifted, select_entries
from conformance.port.record import CallRecord, Trace
from targets.runners.reference.codec import Codec
from targets.runners.reference.selectcall import READY


@dataclass
class Agreement:
    """How one predicted outcome compares with the original run."""

    compared: int = 0
    mismatches: list[str] = field(default_factory=list)
    handlers_original: int = 0
    handlers_predicted: int = 0
    status_original: WaitStatus | None = None
    status_predicted: WaitStatus | None = None
    output_original: bytes = b""
    output_port: bytes = b""

    @property
    def agrees(self) -> bool:
        """Everything compared agrees."""
        return not self.problems()

    def problems(self) -> list[str]:
        """Every disagreement, in words."""
        out = list(self.mismatches)
        if self.handlers_original != self.handlers_predicted:
            out.append(f"signal handler runs: the original {self.handlers_original}, the port "
                       f"{self.handlers_predicted}")
        if self.status_original is None or self.status_predicted is None or \
                not self.status_original.matches(self.status_predicted):
            out.append(f"exit status: the original {self.status_original}, the port "
                       f"{self.status_predicted}")
        if self.output_original != self.output_port:
            out.append(f"output on fd 1: the original {self.output_original!r}, the port "
                       f"{self.output_port!r}")
        return out


def verify(lifted: Lifted, trace: Trace, expected: Expected) -> Agreement:
    """The best-matching predicted outcome against the original run."""
    best = None
    for outcome in expected.outcomes:
        agreement = _compare(lifted, trace, outcome)
        if best is None or len(agreement.problems()) < len(best.problems()):
            best = agreement
    return best if best is not None else Agreement()


def _compare(lifted: Lifted, trace: Trace, outcome: Outcome) -> Agreement:
    abi = trace.abi
    codec = Codec(abi)
    result = Agreement(output_original=trace.run.stdout, output_port=lifted.console,
                       status_original=trace.run.status)
    lpid_of = dict(lifted.lpid_of)
    lpid_of[trace.driver_pid] = DRIVER
    for lpid, index, call in lifted.pairs:
        event = next((e for e in outcome.events(lpid) if isinstance(e, Call) and e.op == index),
                     None)
        where = f"p{lpid} op {index} ({call.name} at {call.pc:#x})"
        if event is None:
            result.mismatches.append(f"{where}: the port never completes it")
            continue
        result.compared += 1
        for what, original, predicted in _pairs(call, event, lpid_of, abi, codec):
            if not _same(original, predicted):
                result.mismatches.append(f"{where}: {what}: the original {original}, the port "
                                         f"{predicted}")
    result.handlers_predicted = sum(isinstance(e, Handler) for _, events in outcome.procs
                                    for e in events)
    result.handlers_original = sum(1 for c in trace.calls
                                   if c.name == "rt_sigreturn" and c.depth > 0)
    reaped = dict(outcome.reaped)
    result.status_predicted = reaped.get(0)
    return result


def _names(names, bits: int) -> str:
    """A flag set as canonical text (sorted names, then leftover bits)."""
    return "|".join(sorted(str(n) for n in names) + ([hex(bits)] if bits else [])) or "0"


def _same(original, predicted) -> bool:
    if isinstance(predicted, TimeBound):
        return predicted.matches(original)
    return _value_matches(predicted, original)


def _pairs(call: CallRecord, event: Call, lpid_of, abi, codec):
    """(what, original value, predicted value) for every comparable part of one call."""
    err = call.errno(abi)
    if err is not None:
        original = Errno(err)
    elif isinstance(event.ret, Pid):
        original = Pid(lpid_of.get(call.result, f"unknown {call.result}"))
    else:
        original = call.result
    yield "result", original, event.ret
    if err is not None:
        return
    name = call.name
    if name == "read" and call.output("buf") is not None:
        yield "bytes read", call.output("buf").data[:DATA_RECORD_LIMIT] or None, event.data
    if name in ("wait4", "waitpid") and call.output("status") is not None and event.outs:
        raw = call.output("status").field("value")
        yield "wait status", decode_linux_wait_status(raw, abi), event.outs[0]
    if name in ("poll", "ppoll") and call.output("fds") is not None:
        fds = call.output("fds")
        for k, predicted in enumerate(event.outs):
            if isinstance(predicted, Names):
                got = codec.flags(fds.field("revents", k) & 0xFFFF, POLL_EVENTS)
                yield (f"revents[{k}]", _names(got.names, got.bits),
                       _names(predicted.names, predicted.unknown))
    if name == "select":
        # lifted as poll (lift._select): an fd is set in its out set iff poll's predicted
        # revents hold an event that makes it ready in that set
        for k, (fd, role) in enumerate(select_entries(call)):
            out = call.output(f"{role}fds")
            if out is None or k >= len(event.outs) or not isinstance(event.outs[k], Names):
                continue
            original = any(dict(e)["fd"] == fd for e in out.fields)
            predicted = bool(set(event.outs[k].names) & set(READY[role]))
            yield f"fd {fd} in the {role} set out", original, predicted
    if name in ("setitimer", "getitimer"):
        buf = call.output("old" if name == "setitimer" else "value")
        if buf is not None and len(event.outs) >= 2:
            left = buf.field("value_sec") * 1_000_000 + buf.field("value_usec")
            every = buf.field("interval_sec") * 1_000_000 + buf.field("interval_usec")
            yield "time left", Micros(left), event.outs[0]
            yield "interval", Micros(every), event.outs[1]
    if name == "sigaltstack" and call.output("old") is not None and event.outs:
        old, predicted = call.output("old"), event.outs[0]
        if isinstance(predicted, AltStack):
            flags = codec.flags(old.field("flags") & 0xFFFF_FFFF, SS_FLAGS)
            yield ("old ss_flags", _names(flags.names, flags.bits),
                   _names(predicted.flags.names, predicted.flags.unknown))
            if "SS_DISABLE" not in flags.names:
                yield "old ss_size", old.field("ss_size"), codec.size(predicted.size)


def program_outputs(raw: bytes) -> dict[int, bytes]:
    """What each program of a batch run wrote to fd 1 besides its records (a ported test's
    own output), by program index.

    Records are whole lines (one write each). A program's output is written just before the
    record of the op that wrote it, so the bytes between two records (text before a record's
    magic on its line, and whole lines without one) belong to the program of the record that
    follows them; bytes after the last record (a VM's power-down line) belong to none."""
    from conformance.trace import MAGIC
    outputs: dict[int, bytes] = {}
    pending = b""
    for line in raw.splitlines(keepends=True):
        at = line.find(MAGIC)
        if at < 0:
            pending += line
            continue
        pending += line[:at]
        m = _PROGRAM.match(line, at)
        if m and pending:
            index = int(m.group(1), 16)
            outputs[index] = outputs.get(index, b"") + pending
        pending = b""
    return outputs


_PROGRAM = re.compile(rb"@@cf:([0-9a-f]{1,16})\.")
