"""Parse a batch's raw output into records per program and logical process.

A record is `@@cf:<prog>.<lpid>:<seq>:<kind>:<fields>[;<data>]:<checksum>` (hex; the checksum
is the byte sum of everything before it, mod 2**16). The magic may appear anywhere in a line,
because consoles interleave kernel noise. Nothing is dropped silently: lines that are not
records are counted, and bad checksums, malformed records, duplicates and gaps in a process's
sequence numbers become `problems` of the program they belong to (or of the batch).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from conformance.lower import DRIVER_LPID

MAGIC = b"@@cf:"
_RECORD = re.compile(
    rb"@@cf:([0-9a-f]{1,16})\.([0-9a-f]{1,16}):([0-9a-f]{1,16}):([A-Z]):"
    rb"([0-9a-f,]*)(?:;([0-9a-f]*))?:([0-9a-f]{4})")


@dataclass(frozen=True)
class RawRecord:
    """One checked record; fields are signed 64-bit values."""

    prog: int
    lpid: int
    seq: int
    kind: str
    fields: tuple[int, ...]
    data: bytes | None
    line: int


@dataclass
class ProgramTrace:
    """The records of one program of the batch."""

    index: int
    procs: dict[int, list[RawRecord]] = field(default_factory=dict)
    driver: list[RawRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def started(self) -> bool:
        """The driver forked the program's process 0."""
        return any(r.kind == "G" for r in self.driver)

    @property
    def finished(self) -> bool:
        """The driver saw every process of the program end."""
        return any(r.kind == "N" for r in self.driver)

    @property
    def hung(self) -> bool:
        """The watchdog fired."""
        return any(r.kind == "H" for r in self.driver)


@dataclass
class Trace:
    """A parsed batch output."""

    programs: dict[int, ProgramTrace]
    driver_pid: int | None
    noise_lines: int
    problems: list[str]
    handlers: tuple[int, ...] = ()  # addresses of the plain and SA_SIGINFO recording handlers

    def program(self, index: int) -> ProgramTrace:
        """The trace of program `index` (empty if it produced nothing)."""
        return self.programs.get(index) or ProgramTrace(index)


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def parse(output: bytes) -> Trace:
    """Parse raw output (bytes, any noise allowed) into a Trace."""
    programs: dict[int, ProgramTrace] = {}
    problems: list[str] = []
    noise = 0
    driver_pid = None
    handlers: tuple[int, ...] = ()
    seen: dict[tuple[int, int], set[int]] = {}
    for lineno, line in enumerate(output.split(b"\n"), start=1):
        start = line.find(MAGIC)
        if start < 0:
            noise += bool(line.strip())
            continue
        m = _RECORD.match(line, start)
        if not m:
            problems.append(f"line {lineno}: malformed record {_show(line[start:])}")
            _attribute(programs, line[start:], f"line {lineno}: malformed record")
            continue
        body_end = m.start(7)
        if sum(line[start:body_end]) & 0xFFFF != int(m.group(7), 16):
            problems.append(f"line {lineno}: bad checksum in {_show(m.group(0))}")
            _attribute(programs, line[start:], f"line {lineno}: record with a bad checksum")
            continue
        try:
            fields = tuple(_signed(int(f, 16)) for f in m.group(5).split(b",")) if m.group(5) else ()
            data = bytes.fromhex(m.group(6).decode()) if m.group(6) is not None else None
        except ValueError:
            problems.append(f"line {lineno}: malformed fields in {_show(m.group(0))}")
            continue
        rec = RawRecord(int(m.group(1), 16), int(m.group(2), 16), int(m.group(3), 16),
                        m.group(4).decode(), fields, data, lineno)
        if rec.kind == "I":
            driver_pid = fields[0] if fields else None
            handlers = fields[1:]
            continue
        key = (rec.prog, rec.lpid)  # a driver lane numbers its records across its programs
        if rec.seq in seen.setdefault(key, set()):
            problems.append(f"line {lineno}: duplicate record {_show(m.group(0))}")
            continue
        seen[key].add(rec.seq)
        prog = programs.setdefault(rec.prog, ProgramTrace(rec.prog))
        if rec.lpid == DRIVER_LPID:
            prog.driver.append(rec)
        else:
            prog.procs.setdefault(rec.lpid, []).append(rec)
    for prog in programs.values():
        for lpid, recs in prog.procs.items():
            recs.sort(key=lambda r: r.seq)
            seqs = [r.seq for r in recs]
            if seqs != list(range(len(seqs))):
                missing = sorted(set(range(max(seqs) + 1)) - set(seqs))
                prog.problems.append(f"p{lpid}: records missing (sequence numbers {missing})")
        prog.driver.sort(key=lambda r: r.seq)
    return Trace(programs, driver_pid, noise, problems, handlers)


def _attribute(programs: dict[int, ProgramTrace], text: bytes, problem: str) -> None:
    """Charge a damaged record to its program when its header is still readable."""
    m = re.match(rb"@@cf:([0-9a-f]{1,16})\.", text)
    if m:
        index = int(m.group(1), 16)
        programs.setdefault(index, ProgramTrace(index)).problems.append(problem)


def _show(raw: bytes, limit: int = 80) -> str:
    text = raw.decode("ascii", "replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")
