"""A batch: many programs in one ELF, run by the driver in one or more lanes (see lower_driver).

Image layout from `IMAGE_BASE`: ELF headers, the runtime routines (assembled once per ABI:
conformance.runtime), read-only data (write payloads), the batch's code (entry first), then the
zero-filled state at `Memory.BASE`.
"""
from __future__ import annotations

from dataclasses import dataclass

from conformance.assemble import assemble
from conformance.elf import HEADER_SIZE, write_elf
from conformance.emit import emitter_for
from conformance.ir import Program
from conformance.lanes import plan
from conformance.lower import (
    NO_FAULTS, Faults, Memory, MicroOp, Rodata, lower_driver, lower_program,
)
from conformance.runtime import Runtime, runtime_for
from targets.tables import Abi

IMAGE_BASE = 0x400000
RUNTIME_AT = IMAGE_BASE + HEADER_SIZE + -(IMAGE_BASE + HEADER_SIZE) % 16  # 16-aligned
DEFAULT_WATCHDOG_MS = 2000


class BatchTooLarge(ValueError):
    """The programs' image does not fit below the state area: split them into smaller batches."""


@dataclass(frozen=True)
class Batch:
    """The programs of a batch, their listing and the ELF that runs them."""

    programs: tuple[Program, ...]
    abi: Abi
    code_listing: str  # the batch's own code, from the ELF's entry on
    elf: bytes
    watchdog_ms: int
    runtime: Runtime

    @property
    def listing(self) -> str:
        """The whole code, to read: the runtime routines, then the batch's own."""
        c = emitter_for(self.abi).comment_prefix
        where = "".join(f"{c}   {label} = {address:#x}\n"
                        for label, address in self.runtime.routines.items())
        return (f"{c} runtime routines at {self.runtime.address:#x} (the same in every batch; "
                f"the code below calls them by address):\n{where}{self.runtime.listing}"
                f"{c} the batch's code, at the entry point:\n{self.code_listing}")


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
    runtime = runtime_for(abi, faults, address=RUNTIME_AT)
    rodata = rodata_after(runtime)
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
    listing, elf = link(micro, abi, runtime, rodata, faults)
    return Batch(programs, abi, listing, elf, watchdog_ms, runtime)


def rodata_after(runtime: Runtime) -> Rodata:
    """The read-only data area of an image, after its runtime routines."""
    return Rodata(base=_align16(runtime.end))


def code_start(rodata: Rodata) -> int:
    """Where a batch's code starts: after its read-only data."""
    return _align16(rodata.base + len(rodata.blob))


def _align16(address: int) -> int:
    return address + -address % 16


def link(micro: list[MicroOp], abi: Abi, runtime: Runtime, rodata: Rodata,
         faults: Faults = NO_FAULTS) -> tuple[str, bytes]:
    """(listing, ELF) of `micro` (from `_start`), with the runtime and `rodata` before it."""
    listing = emitter_for(abi, faults, runtime.routines).render(micro)
    code_at = code_start(rodata)
    code = assemble(listing, abi, code_at)
    image = bytearray(runtime.code)
    image += bytes(rodata.base - runtime.end) + rodata.blob
    image += bytes(code_at - RUNTIME_AT - len(image)) + code
    if RUNTIME_AT + len(image) > Memory.BASE:
        raise BatchTooLarge(f"batch is too large ({len(image)} bytes of code and data): split "
                            "it into smaller batches")
    # The headers end where the runtime starts but for alignment padding.
    payload = bytes(RUNTIME_AT - IMAGE_BASE - HEADER_SIZE) + image
    elf = write_elf(payload, machine=abi.elf_machine, base=IMAGE_BASE, entry=code_at,
                    memsz=Memory.END - IMAGE_BASE)
    return listing, elf
