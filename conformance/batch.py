"""A batch: many programs in one ELF, run by the driver in one or more lanes (see lower_driver).

Image layout from `IMAGE_BASE`: ELF headers, read-only data (write payloads), code (entry
first), then the zero-filled state at `Memory.BASE`.
"""
from __future__ import annotations

from dataclasses import dataclass

from conformance.assemble import assemble
from conformance.elf import HEADER_SIZE, write_elf
from conformance.emit import emitter_for
from conformance.ir import Program
from conformance.lanes import plan
from conformance.lower import NO_FAULTS, Faults, Memory, Rodata, lower_driver, lower_program
from targets.tables import Abi

IMAGE_BASE = 0x400000
DEFAULT_WATCHDOG_MS = 2000


class BatchTooLarge(ValueError):
    """The programs' image does not fit below the state area: split them into smaller batches."""


@dataclass(frozen=True)
class Batch:
    """The programs of a batch, their listing and the ELF that runs them."""

    programs: tuple[Program, ...]
    abi: Abi
    listing: str
    elf: bytes
    watchdog_ms: int


def build(programs, abi: Abi, *, watchdog_ms: int = DEFAULT_WATCHDOG_MS,
          faults: Faults = NO_FAULTS, ending: str = "exit", lanes: int = 1) -> Batch:
    """Lower, emit, assemble and link `programs` into one batch ELF for `abi`.

    `faults` plants deliberate bugs (mutation tests only); `ending` is how the driver ends
    (lower.ENDINGS: "poweroff" for a batch that boots as a VM's /init); `lanes` programs
    run at once (see conformance.lanes).
    """
    programs = tuple(programs)
    if not programs:
        raise ValueError("a batch needs at least one program")
    rodata = Rodata(base=IMAGE_BASE + HEADER_SIZE)
    names = [p.name for p in programs]
    # (an unnamed program is never the one named: die_after "" means no such fault)
    die_after = names.index(faults.die_after) if faults.die_after and faults.die_after in names \
        else None
    # A run that dies "after program X" means one thing only when programs run in order.
    lanes = 1 if die_after is not None else lanes
    micro = lower_driver(len(programs), abi, watchdog_ms, ending, faults, die_after, rodata,
                         plan(programs, lanes))
    for index, program in enumerate(programs):
        micro += lower_program(program, index, abi, rodata, faults)
    listing = emitter_for(abi, faults).render(micro)
    code_at = rodata.base + len(rodata.blob)
    code_at += -code_at % 16
    code = assemble(listing, abi, code_at)
    payload = bytes(rodata.blob) + bytes(code_at - rodata.base - len(rodata.blob)) + code
    if IMAGE_BASE + HEADER_SIZE + len(payload) > Memory.BASE:
        raise BatchTooLarge(f"batch of {len(programs)} programs is too large "
                         f"({len(payload)} bytes): split it into smaller batches")
    elf = write_elf(payload, machine=abi.elf_machine, base=IMAGE_BASE, entry=code_at,
                    memsz=Memory.END - IMAGE_BASE)
    return Batch(programs, abi, listing, elf, watchdog_ms)
