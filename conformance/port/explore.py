"""`conformance port --explore`: the paths the original takes when a checked result fails.

After the normal port, every recorded call whose result the code right after the trap
compares (`regcheck.checks_after`, kind "result") is a checked condition. The source test is
run again on the reference machine once per flip: that call (the same record number, process,
address and number as in the original run; the machine is deterministic up to it) is answered
with an error without reaching the model: ENOSYS for every call, and the call's natural error
too where there is a simple one (`NATURAL`). The forcing is `ForcingSyscalls`, a wrapper
around the standalone machine's dispatch; the machine itself is unchanged.

A flip whose run takes another path (another call sequence, other output, another exit status)
becomes a variant, OUTDIR/paths/<n>-<call>-<errno>/. A real kernel will not fail these calls
on demand, so a variant cannot be checked on a target the way the port is: its program.prog
holds the forced run's calls *before* the forced call and, after it, only the forced run's
output (writes to fd 1/2) and its exit; everything that depended on the forced result is left
out. What is checked is the oracle's prediction for that program against the forced run's
output and exit status (`verify`), which says the variant is a faithful transcript, not that a
kernel takes that path. The variant's report says so: "needs the forced result: not checkable
on a real kernel".
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from conformance.port.lift import Lifted, _trap_length, lift
from conformance.port.record import CallRecord, RecordingSyscalls, Recorder, Trace
from conformance.port.regcheck import checks_after
from conformance.port.source import SourceElf
from conformance.port.verify import Agreement, verify
from targets.runners.reference.standalone import StandaloneSyscalls
from targets.runners.reference.syscalls import Syscalls

# The error a call fails with on its own, where there is one simple answer.
NATURAL = {"read": "EBADF", "write": "EBADF", "close": "EBADF", "dup": "EBADF",
           "dup2": "EBADF", "dup3": "EBADF", "rt_sigaction": "EINVAL",
           "sigaltstack": "EINVAL", "rt_sigprocmask": "EINVAL", "setitimer": "EINVAL",
           "getitimer": "EINVAL", "pipe": "EMFILE", "pipe2": "EMFILE", "fork": "EAGAIN",
           "wait4": "ECHILD", "waitpid": "ECHILD", "kill": "ESRCH", "poll": "EINVAL",
           "nanosleep": "EINVAL"}
NOT_CHECKABLE = "needs the forced result: not checkable on a real kernel"
_OUTPUT_CALLS = ("exit", "exit_group")


@dataclass(frozen=True)
class Flip:
    """One forced result: record `seq` of the original run answered -`errno`."""

    seq: int
    call: CallRecord
    errno: str

    @property
    def label(self) -> str:
        return f"{self.call.name or self.call.nr}-{self.errno}"


class _ForceDispatch(Syscalls):
    """Below the recorder, above the model: answer the chosen call with the forced error."""

    force: Flip | None = None
    forced_done = False

    def handle(self, proc, nr, args):
        flip = self.force
        if flip is not None and not self.forced_done and proc.pid != self.machine.driver \
                and len(self.records) == flip.seq and proc.pid == flip.call.pid \
                and nr == flip.call.nr and \
                proc.cpu.get(self.machine.isa.pc) - self.machine.trap.length == flip.call.pc:
            self.forced_done = True
            return self.fail(flip.errno)
        return super().handle(proc, nr, args)


class ForcingSyscalls(RecordingSyscalls, _ForceDispatch):
    """Recording as usual; one call's result forced (MRO: the recorder, the standalone layer
    with its argument width and clobbers, then the forcing, then the model's dispatch)."""


assert ForcingSyscalls.__mro__.index(StandaloneSyscalls) < \
    ForcingSyscalls.__mro__.index(_ForceDispatch)


class ForcingRecorder(Recorder):
    syscalls_class = ForcingSyscalls


def record_forced(elf: bytes, abi, flip: Flip, *, limit_s: float) -> tuple[Trace, bool]:
    """Run `elf` with `flip` applied; (the trace, whether the flip happened)."""
    machine = ForcingRecorder(elf, abi, limit_s=limit_s)
    machine.syscalls.force = flip
    run = machine.run_test()
    trace = Trace(tuple(machine.syscalls.records), run, machine.program, abi,
                  machine.frame_note, machine.driver)
    return trace, machine.syscalls.forced_done


def checked_calls(trace: Trace, source: SourceElf) -> list[CallRecord]:
    """The calls whose result the code right after the trap compares."""
    out = []
    for call in trace.calls:
        if call.result is None or call.name in ("rt_sigreturn",) + _OUTPUT_CALLS:
            continue
        after = call.pc + _trap_length(trace.abi)
        code = source.code_at(after, 16 * 12)
        if any(c.kind == "result" for c in checks_after(code, after, trace.abi.result_reg)):
            out.append(call)
    return out


def flips(trace: Trace, source: SourceElf) -> list[Flip]:
    """Every flip to try: ENOSYS, and the natural error, for each checked call (an error the
    call already returned is not a flip)."""
    out = []
    for call in checked_calls(trace, source):
        for errno in dict.fromkeys(("ENOSYS", NATURAL.get(call.name or ""))):
            if errno and call.errno(trace.abi) != errno:
                out.append(Flip(call.seq, call, errno))
    return out


@dataclass
class PathResult:
    """What one flip did."""

    n: int
    flip: Flip
    trace: Trace
    applied: bool
    changed: bool
    variant: Lifted | None = None
    agreement: Agreement | None = None
    program_text: str = ""
    elf: bytes = b""
    listing: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def dirname(self) -> str:
        return f"{self.n}-{self.flip.label}"

    def outcome(self) -> str:
        run = self.trace.run
        return f"{run.status or run.watchdog}, output {run.stdout!r}"


def _path(trace: Trace) -> tuple:
    return tuple((c.pid, c.pc, c.nr) for c in trace.calls)


def variant_trace(trace: Trace, seq: int) -> Trace:
    """The forced run as the variant carries it: every call before the forced one; after it,
    only the test process's own output (writes to fd 1/2) and its exit."""
    keep = []
    for call in trace.calls:
        if call.seq < seq:
            keep.append(call)
        elif call.seq > seq and call.pid == trace.program_pid and call.depth == 0 and (
                call.name in _OUTPUT_CALLS
                or call.name == "write" and call.args[0] in (1, 2)):
            keep.append(call)
    return dataclasses.replace(trace, calls=tuple(keep))


def explore(original: Trace, source: SourceElf, elf: bytes, target, *,
            limit_s: float) -> list[PathResult]:
    """Run every flip; lift, predict and build the variant of each that changed the path."""
    from conformance.batch import build
    from conformance.syntax import format as format_program
    from oracle import predict
    results = []
    for n, flip in enumerate(flips(original, source), start=1):
        trace, applied = record_forced(elf, original.abi, flip, limit_s=limit_s)
        changed = applied and (_path(trace) != _path(original)
                               or trace.run.stdout != original.run.stdout
                               or trace.run.status != original.run.status)
        result = PathResult(n, flip, trace, applied, changed)
        results.append(result)
        if not changed or trace.run.watchdog:
            continue
        try:
            vtrace = variant_trace(trace, flip.seq)
            lifted = lift(vtrace, source)
            lifted.program = dataclasses.replace(lifted.program, doc=(
                f"A --explore variant of {source.path}: record {flip.seq} "
                f"({flip.call.describe(original.abi)}) forced to -{flip.errno} on the reference "
                f"machine.\n{NOT_CHECKABLE}: the calls before the forced one, then only the "
                "forced run's output and exit."))
            result.variant = lifted
            result.program_text = format_program(lifted.program)
            expected = predict(lifted.program)
            result.agreement = verify(lifted, vtrace, expected)
            batch = build([lifted.program], target)
            result.elf, result.listing = batch.elf, batch.listing
        except Exception as exc:  # the variant is informational: say why there is none
            result.problems.append(f"no variant program: {type(exc).__name__}: {exc}")
    return results


def paths_section(results: list[PathResult], abi) -> list[str]:
    """The main report's "paths" section."""
    out = [f"paths (--explore: {len(results)} flips of checked results; a variant "
           f"{NOT_CHECKABLE}, see paths/*/report.txt):"]
    if not results:
        out.append("  (none: no call's result is compared right after its trap)")
    for r in results:
        head = (f"  {r.n}. {r.flip.call.pc:#x} {r.flip.call.describe(abi)} forced -> "
                f"-{r.flip.errno}: ")
        if not r.applied:
            out.append(head + "not applied (the forced run did not reach the call)")
        elif not r.changed:
            out.append(head + f"same path ({r.outcome()})")
        else:
            line = head + f"path changed: {r.outcome()}; paths/{r.dirname}/"
            if r.agreement is not None:
                line += ("; variant's oracle prediction matches the forced run's output and "
                         "exit status" if r.agreement.agrees else
                         "; variant's oracle prediction DIFFERS: "
                         + "; ".join(r.agreement.problems()))
            elif r.problems:
                line += "; informational only: " + "; ".join(r.problems)
            else:
                line += "; informational only (the forced run did not exit)"
            out.append(line)
    return out


def write_paths(results: list[PathResult], outdir: Path, source: SourceElf, target) -> list[Path]:
    """OUTDIR/paths/<n>-<call>-<errno>/ for each flip that changed the path."""
    from conformance.port.command import trace_text
    written = []
    for r in results:
        if not r.changed:
            continue
        d = outdir / "paths" / r.dirname
        d.mkdir(parents=True, exist_ok=True)
        files = {"trace.txt": trace_text(r.trace), "report.txt": _variant_report(r, source)}
        if r.program_text:
            files["program.prog"] = r.program_text
            files[f"{target.isa}.s"] = r.listing
        for name, text in files.items():
            (d / name).write_text(text)
            written.append(d / name)
        if r.elf:
            elf = d / f"{target.isa}.elf"
            elf.write_bytes(r.elf)
            elf.chmod(0o755)
            written.append(elf)
    return written


def _variant_report(r: PathResult, source: SourceElf) -> str:
    abi = r.trace.abi
    c = r.flip.call
    out = [f"flipped result: record {c.seq}, pid {c.pid} at {c.pc:#x}: "
           f"{c.describe(abi)} forced to -{r.flip.errno}",
           f"{NOT_CHECKABLE}: the forced error came from the reference machine, not the model; "
           "no target kernel fails this call on demand.",
           f"forced run: {r.outcome()}, {len(r.trace.calls)} syscalls", "",
           "forced run's calls:"]
    out += [f"  pid {x.pid} {x.pc:#x}: {x.describe(abi)}"
            + ("   <- forced" if x.seq == c.seq else "") for x in r.trace.calls]
    out.append("")
    if r.variant is None:
        out.append("variant: informational only (" + ("; ".join(r.problems) or
                                                       "the forced run did not exit") + ")")
        return "\n".join(out) + "\n"
    out += ["program.prog: the forced run's calls before the forced one, then only its output "
            "(writes to fd 1/2) and exit; the calls after the forced one that depended on it "
            "are left out.", "", "lifted:"]
    out += [f"  {x.pc:#x} {x.describe(abi)}  ->  {op}" for x, op in r.variant.lifted]
    out += ["", "unliftable:"] + [f"  {u.pc:#x} {u.what}" for u in r.variant.unliftable
                                   or []] + (["  (none)"] if not r.variant.unliftable else [])
    a = r.agreement
    out += ["", "the oracle's prediction for program.prog against the forced run: "
            f"exit status forced {a.status_original}, predicted {a.status_predicted}; output "
            + ("the same bytes" if a.output_original == a.output_port else "DIFFERENT"),
            "  verdict: " + ("matches" if a.agrees else "DIFFERS: " + "; ".join(a.problems()))]
    return "\n".join(out) + "\n"


__all__ = ["Flip", "PathResult", "ForcingSyscalls", "NATURAL", "NOT_CHECKABLE", "explore",
           "flips", "checked_calls", "record_forced", "paths_section", "write_paths"]
