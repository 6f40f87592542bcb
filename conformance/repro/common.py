"""What both reproducer backends share: the micro-ops of one program, named memory, payloads.

A reproducer runs the batch driver for exactly one program (program index 0), so its records
are the ones a one-program batch ELF writes. The backends only translate these micro-ops;
they never decide what a call means.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cache

from conformance.batch import DEFAULT_WATCHDOG_MS
from conformance.ir import Program
from conformance.lower import (
    Imm, Memory, MicroOp, Move, Rodata, Syscall, lower_driver, lower_program,
)
from targets.tables import Abi

# Two bases for the same payloads: an Imm that moves with the base is a payload address, one
# that stays put is a number. Nothing else in the micro-ops depends on the rodata base.
_PAYLOAD_BASES = (0x10_0000_0000, 0x20_0000_0000)
PERIOD_MIN_SIZE = 512  # payloads at least this long are stored as one period, if they have one
PERIOD_MAX = 256


# The runtime routines the micro-ops take addresses of, and their names in the reproducers.
FUNCTIONS = {"rt_handler_plain": "handler_plain", "rt_handler_info": "handler_info",
             "rt_restorer": "cf_restorer", "rt_nop_handler": "nop_handler"}

@dataclass(frozen=True)
class PayloadAddr:
    """The address of byte `offset` of payload number `index` (a `write` buffer)."""

    index: int
    offset: int = 0


@dataclass(frozen=True)
class Payload:
    """Bytes a write sends: `data`, which repeats `block` when `block` is shorter."""

    data: bytes
    block: bytes


@dataclass
class PayloadRodata(Rodata):
    """Rodata that remembers which payload starts at which address."""

    starts: dict[int, bytes] = field(default_factory=dict)

    def add(self, data: bytes) -> int:
        """The address of `data` (see Rodata.add)."""
        addr = super().add(data)
        self.starts[addr] = data
        return addr


@dataclass(frozen=True)
class Lowered:
    """The driver's and the program's micro-ops, with payload addresses made symbolic."""

    ops: tuple[MicroOp, ...]
    payloads: tuple[Payload, ...]


def lower_one(program: Program, abi: Abi, watchdog_ms: int = DEFAULT_WATCHDOG_MS) -> Lowered:
    """The micro-ops a one-program batch ELF is built from (driver first), for `abi`."""
    first, second = (PayloadRodata(base=b) for b in _PAYLOAD_BASES)
    ops = lower_program(program, 0, abi, first)
    moved = lower_program(program, 0, abi, second)
    starts = sorted(first.starts)
    payloads = tuple(_payload(first.starts[s]) for s in starts)

    def symbolic(a, b):
        if isinstance(a, Imm) and a.value != b.value:
            index = max(i for i, s in enumerate(starts) if s <= a.value)
            return PayloadAddr(index, a.value - starts[index])
        if dataclasses.is_dataclass(a) and not isinstance(a, type):
            changes = {f.name: symbolic(getattr(a, f.name), getattr(b, f.name))
                       for f in dataclasses.fields(a)}
            return dataclasses.replace(a, **changes)
        if isinstance(a, tuple):
            return tuple(symbolic(x, y) for x, y in zip(a, b))
        return a

    body = [symbolic(a, b) for a, b in zip(ops, moved)]
    return Lowered(tuple(lower_driver(1, abi, watchdog_ms)) + tuple(body), payloads)


def _payload(data: bytes) -> Payload:
    if len(data) >= PERIOD_MIN_SIZE:
        for period in range(1, PERIOD_MAX + 1):
            if all(data[i] == data[i % period] for i in range(len(data))):
                return Payload(data, data[:period])
    return Payload(data, data)


@cache
def memory_names() -> tuple[tuple[int, str], ...]:
    """(offset from Memory.BASE, name) of every named address of `Memory`, by offset."""
    names = {}
    for name, value in vars(Memory).items():
        if name.isupper() and isinstance(value, int) and Memory.BASE <= value < Memory.END:
            if name != "BASE":
                names.setdefault(value - Memory.BASE, name)
    return tuple(sorted(names.items()))


def memory_ref(addr: int) -> str:
    """An address of `Memory` as `NAME` or `NAME + 0x..` (offsets from Memory.BASE)."""
    best = max((o, n) for o, n in memory_names() if o <= addr - Memory.BASE)
    rest = addr - Memory.BASE - best[0]
    return best[1] if rest == 0 else f"{best[1]} + {rest:#x}"


def in_memory(value: int) -> bool:
    """Whether an immediate is an address in `Memory` (the backends render it as one)."""
    return Memory.BASE <= value < Memory.END


def syscall_names(ops) -> dict[str, int]:
    """Name -> number of every named syscall the micro-ops make."""
    return {op.name: op.nr for op in ops if isinstance(op, Syscall) and op.name}


def store_size(op: Move) -> int:
    """The width a Move writes: 4 or 8 bytes, as the emitters store (others are a bug)."""
    if op.dst.size not in (4, 8):
        raise ValueError(f"no emitter stores {op.dst.size}-byte words ({op!r})")
    return op.dst.size

