"""`conformance port`: an old x86-64 test ELF -> an IR program -> an ELF for another ABI.

    source.load_source   check the ELF (class, machine, loadable, not packed)
    record.record        run it on the reference machine under the source ABI, every call kept
    lift.lift            the calls as a Program (symbolic fds and pids, structs as operands)
    verify.verify        the oracle's prediction for the Program against the original run
    write_outputs        OUTDIR: program.prog, <isa>.elf/.s, expected.txt, <isa>.rs/.c,
                         trace.txt, report.txt
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conformance.batch import build
from conformance.events import Expected
from conformance.port.lift import Lifted, lift
from conformance.port.record import Trace, record
from conformance.port.source import PortError, SourceElf, load_source
from conformance.port.verify import Agreement, verify
from conformance.syntax import format as format_program
from conformance.syntax import parse
from targets.tables import Abi, AbiError, load
from targets.runners.reference.standalone import DEFAULT_LIMIT_S

TARGET_ISAS = {"aarch64": "linux-aarch64", "x86_64": "linux-x86_64"}


@dataclass
class Port:
    """Everything one port produced."""

    source: SourceElf
    target: Abi
    trace: Trace
    lifted: Lifted
    expected: Expected
    agreement: Agreement
    elf: bytes
    listing: str
    paths: list | None = None  # --explore: explore.PathResult per flip (None: not explored)


def target_abi(name: str) -> Abi:
    """--to: an ISA (its Linux table) or an ABI table name; PortError otherwise."""
    try:
        return load(TARGET_ISAS.get(name, name))
    except AbiError:
        raise PortError(f"--to {name!r}: expected an ISA ({', '.join(TARGET_ISAS)}) or an ABI "
                        "table name (e.g. linux-aarch64, breenix-legacy-aarch64)") from None


def port(path: str, image: bytes, from_abi: str, to: str = "aarch64", *,
         limit_s: float = DEFAULT_LIMIT_S, explore: bool = False) -> Port:
    """Port one test ELF (see the module docstring); PortError for bad input or a test that
    does not end. `explore`: also rerun it once per checked result forced to fail
    (`conformance.port.explore`)."""
    from oracle import predict
    source = load_source(path, image, from_abi)
    target = target_abi(to)
    trace = record(image, source.abi, limit_s=limit_s)
    if trace.run.watchdog:
        raise PortError(f"{path}: {trace.run.watchdog}")
    lifted = lift(trace, source)
    if not lifted.program.body:
        raise PortError(f"{path}: no call of the test could be lifted "
                        f"({len(lifted.unliftable)} unliftable: see them with a smaller test)")
    text = format_program(lifted.program)
    if parse(text) != lifted.program:  # an internal error: the lifter made an invalid op
        raise RuntimeError(f"the lifted program does not survive its text form:\n{text}")
    expected = predict(lifted.program)
    agreement = verify(lifted, trace, expected)
    batch = build([lifted.program], target)
    paths = None
    if explore:
        from conformance.port.explore import explore as run_flips
        paths = run_flips(trace, source, image, target, limit_s=limit_s)
    return Port(source, target, trace, lifted, expected, agreement, batch.elf, batch.listing,
                paths)


def default_outdir(path: str) -> Path:
    """OUTDIR when -o is not given: next to the ELF, named after it."""
    return Path(path).with_suffix(".port")


def write_outputs(result: Port, outdir: Path) -> list[Path]:
    """Write OUTDIR's files; returns their paths."""
    from conformance import repro
    from conformance.bundle import _outcome_text
    outdir.mkdir(parents=True, exist_ok=True)
    isa = result.target.isa
    files = {
        "program.prog": format_program(result.lifted.program),
        f"{isa}.s": result.listing,
        "expected.txt": _expected_text(result.expected, _outcome_text),
        "trace.txt": trace_text(result.trace),
        "report.txt": report_text(result),
    }
    for kind, suffix in (("rust", "rs"), ("c", "c")):
        try:
            files[f"{isa}.{suffix}"] = getattr(repro, f"{kind}_source")(result.lifted.program,
                                                                          result.target)
        except Exception as exc:  # a backend that cannot express the program says why
            files[f"{isa}.{suffix}"] = f"/* no {kind} reproducer: {type(exc).__name__}: {exc} */\n"
    written = []
    for name, text in files.items():
        (outdir / name).write_text(text)
        written.append(outdir / name)
    elf = outdir / f"{isa}.elf"
    elf.write_bytes(result.elf)
    elf.chmod(0o755)
    written.insert(1, elf)
    if result.paths is not None:
        from conformance.port.explore import write_paths
        written += write_paths(result.paths, outdir, result.source, result.target)
    return written


def _expected_text(expected: Expected, outcome_text) -> str:
    lines = []
    for n, outcome in enumerate(expected.outcomes, start=1):
        lines.append(f"allowed outcome {n} of {len(expected.outcomes)}:")
        lines += ["  " + line for line in outcome_text(outcome)]
    lines += [f"note: {note}" for note in expected.notes]
    return "\n".join(lines) + "\n"


def trace_text(trace: Trace) -> str:
    """Every recorded call: process, handler depth, address, call, memory in and out."""
    lines = [f"# {len(trace.calls)} syscalls of pid {trace.program_pid} (and its children) "
             f"under {trace.abi.name}, in completion order; depth > 0: inside a handler"]
    for call in trace.calls:
        lines.append(f"pid {call.pid} depth {call.depth} {call.pc:#x}: "
                     f"{call.describe(trace.abi)}")
        for direction, buffers in (("in", call.inputs), ("out", call.outputs)):
            for buf in buffers:
                shown = (", ".join(f"{{{', '.join(f'{k}={_num(v)}' for k, v in element)}}}"
                                   for element in buf.fields) if buf.fields
                         else repr(buf.data[:64]) + ("..." if len(buf.data) > 64 else ""))
                lines.append(f"    {direction} {buf.role} @{buf.addr:#x}"
                             f"{' ' + buf.layout if buf.layout else ''}: {shown}")
    run = trace.run
    lines.append(f"# ended: {run.status or run.watchdog}; {run.calls} calls answered "
                 f"(the virtual driver's included); virtual time {run.virtual_us} us")
    lines += [f"# note: {n}" for n in run.notes]
    return "\n".join(lines) + "\n"


def _num(value: int) -> str:
    return hex(value) if value >= 0x10000 else str(value)


def report_text(result: Port) -> str:
    """report.txt: what was lifted, made symbolic, left out, and relied on."""
    src, lifted, agreement = result.source, result.lifted, result.agreement
    run = result.trace.run
    out = [f"conformance port {src.path} --from-abi {src.abi_alias} --to {result.target.name}",
           f"source: {src.abi.name} ({src.abi.trap}, numbers in {src.abi.number_reg}, "
           f"arguments in {' '.join(src.abi.arg_regs)}, {src.abi.arg_bits}-bit)",
           f"original run on the reference machine: {run.status}, "
           f"{len(result.trace.calls)} syscalls, output {run.stdout!r}", ""]

    def section(title, items):
        out.append(f"{title} ({len(items)}):")
        out.extend(f"  {item}" for item in items or ["(none)"])
        out.append("")

    section("syscalls lifted", [f"{c.pc:#x} {c.describe(src.abi)}  ->  {op}"
                                for c, op in lifted.lifted])
    section("operands made symbolic", lifted.symbolic)
    section("checks the original makes in machine code after a call", lifted.checks)
    section("unliftable", [f"{u.pc:#x} {u.what}" for u in lifted.unliftable])
    section("results the path relied on (the call sequence is the one the reference run took; "
            "every non-zero or error result and every out-value)", lifted.relied)
    section("notes", lifted.notes + [f"reference machine: {n}" for n in run.notes])
    out.append("expectation (the oracle's prediction for program.prog against the original "
               "run):")
    out.append(f"  {agreement.compared} call results compared; handler runs: original "
               f"{agreement.handlers_original}, port {agreement.handlers_predicted}; exit "
               f"status: original {agreement.status_original}, port "
               f"{agreement.status_predicted}; output on fd 1: "
               + ("the same bytes" if agreement.output_original == agreement.output_port
                  else "DIFFERENT"))
    problems = agreement.problems()
    out.append("  verdict: " + ("the port keeps the original's observable behaviour"
                                if not problems else "the port DIFFERS from the original:"))
    out.extend(f"    {p}" for p in problems)
    if result.paths is None:
        out += ["", "not explored: other branch paths of the original (--explore); only the "
                "path the reference run took is ported."]
    else:
        from conformance.port.explore import paths_section
        out += [""] + paths_section(result.paths, src.abi)
    out += ["",
            "check it: conformance run --corpus OUTDIR/program.prog --targets "
            f"{result.target.isa}-ref,{result.target.isa}-qemu-user"]
    return "\n".join(out) + "\n"
