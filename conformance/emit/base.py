"""The emitter interface: micro-ops in, one assembly listing out.

A subclass supplies instruction spellings (loads, stores, compares, the record call) and its
runtime routines; which registers a syscall uses and how it traps come from the ABI table.
The runtime routines are assembled apart, once (conformance.runtime): a batch's listing
reaches them at the addresses it is given.
"""
from __future__ import annotations

from collections.abc import Mapping

from conformance.lower import (
    NO_FAULTS, Add, Branch, CodeAddr, Comment, Faults, Imm, Jump, Label, Memory, MicroOp, Move,
    Neg, Record, Syscall, Value, Var, RET,
)

HANDLER_FIELDS, HANDLER_INFO_FIELDS = 6, 9  # the handler record: see docs/semantics.md
from targets.tables import Abi


class Emitter:
    """Translate micro-ops for one ISA. Subclasses set `isa`, `scratch`, `scratch2`,
    `record_arg`."""

    isa = ""
    scratch = ""
    scratch2 = ""
    record_arg = ""  # where rt_rec takes its argument

    def __init__(self, abi: Abi, faults: Faults = NO_FAULTS,
                 routines: Mapping[str, int] | None = None):
        if abi.isa != self.isa:
            raise ValueError(f"{type(self).__name__} emits {self.isa}, not {abi.isa} ({abi.name})")
        if faults.corrupt_saved_register and faults.corrupt_saved_register not in abi.frame_gregs:
            raise ValueError(f"{abi.name}: no saved register {faults.corrupt_saved_register!r} "
                             f"in the signal frame (known: {', '.join(abi.frame_gregs)})")
        self.abi = abi
        self.faults = faults
        self.routines = dict(routines or {})  # runtime label -> its address

    # --- spellings a subclass provides ------------------------------------------------------
    def jump(self, label: str) -> list[str]:
        raise NotImplementedError

    def branch(self, cond: str, a: str, b: str, label: str) -> list[str]:
        raise NotImplementedError

    def load_imm(self, reg: str, value: int) -> list[str]:
        raise NotImplementedError

    def load_var(self, reg: str, addr: int, size: int) -> list[str]:
        raise NotImplementedError

    def load_code_addr(self, reg: str, label: str) -> list[str]:
        raise NotImplementedError

    def negate(self, reg: str) -> list[str]:
        raise NotImplementedError

    def add_imm(self, reg: str, value: int) -> list[str]:
        raise NotImplementedError

    def probe_syscall(self, op: Syscall) -> list[str]:
        """A syscall between two snapshots of the probe registers, then rt_regdiff."""
        raise NotImplementedError

    def store(self, reg: str, addr: int, size: int) -> list[str]:
        raise NotImplementedError

    def record(self, kind: str, fields: tuple[Value, ...], data) -> list[str]:
        """A record through rt_record, its fields on the stack (the general form)."""
        raise NotImplementedError

    def call(self, label: str) -> str:
        """A call of runtime routine `label`."""
        raise NotImplementedError

    def store_value(self, value: Value, addr: int) -> list[str]:
        """Store `value` in the 8-byte word at `addr` (a subclass may spell constants directly)."""
        return self.load(self.scratch, value) + self.store(self.scratch, addr, 8)

    def entry(self) -> list[str]:
        """What runs first, before `_start` (register set-up the routines rely on)."""
        raise NotImplementedError

    def runtime(self) -> str:
        raise NotImplementedError

    comment_prefix = "#"

    # --- shared translation -----------------------------------------------------------------
    def routine(self, label: str) -> str:
        """How the listing names runtime label `label`: its address in the assembled runtime,
        or the label itself for an emitter given no addresses (single instructions)."""
        address = self.routines.get(label)
        return label if address is None else f"{address:#x}"

    def load(self, reg: str, value: Value) -> list[str]:
        """Instructions that put `value` in `reg`."""
        if isinstance(value, Imm):
            return self.load_imm(reg, value.value)
        if isinstance(value, Var):
            return self.load_var(reg, value.addr, value.size)
        if isinstance(value, CodeAddr):
            if value.label in self.routines:  # absolute: the image is never relocated
                return self.load_imm(reg, self.routines[value.label])
            return self.load_code_addr(reg, value.label)
        if isinstance(value, Neg):
            return self.load(reg, value.value) + self.negate(reg)
        if isinstance(value, Add):
            return self.load(reg, value.value) + self.add_imm(reg, value.constant)
        raise TypeError(f"cannot load {value!r}")

    def syscall(self, op: Syscall) -> list[str]:
        """Arguments into the table's registers, the number, the trap, the result to RET."""
        if len(op.args) > len(self.abi.arg_regs):
            raise ValueError(f"{op.name}: {len(op.args)} arguments, the ABI passes "
                             f"{len(self.abi.arg_regs)}")
        if op.probe:
            return self.probe_syscall(op)
        lines: list[str] = []
        for reg, value in zip(self.abi.arg_regs, op.args):
            lines += self.load(reg, value)
        lines += self.load_imm(self.abi.number_reg, op.nr)
        lines.append(self.abi.trap)
        lines += self.store(self.abi.result_reg, RET.addr, 8)
        return lines

    def translate(self, op: MicroOp) -> list[str]:
        """One micro-op as assembly lines (labels unindented)."""
        if isinstance(op, Label):
            return [f"{op.name}:"]
        if isinstance(op, Comment):
            return [f"{self.comment_prefix} {op.text}"]
        if isinstance(op, Jump):
            return self.jump(op.label)
        if isinstance(op, Branch):
            return (self.load(self.scratch, op.a) + self.load(self.scratch2, op.b)
                    + self.branch(op.cond, self.scratch, self.scratch2, op.label))
        if isinstance(op, Syscall):
            return self.syscall(op)
        if isinstance(op, Move):
            return self.load(self.scratch, op.src) + self.store(self.scratch, op.dst.addr,
                                                                op.dst.size)
        if isinstance(op, Record):
            if op.data is None and len(op.fields) <= Memory.MAX_RECFIELDS:
                return self.short_record(op.kind, op.fields)
            return self.record(op.kind, op.fields, op.data)
        raise TypeError(f"unknown micro-op {op!r}")

    def short_record(self, kind: str, fields: tuple[Value, ...]) -> list[str]:
        """A record without data: its fields go to Memory.RECFIELDS, then rt_rec gets kind and
        count in one register (half the instructions of the general form, and records are
        most of a program's code)."""
        lines: list[str] = []
        for i, value in enumerate(fields):
            lines += self.store_value(value, Memory.RECFIELDS + 8 * i)
        return lines + self.load_imm(self.record_arg, ord(kind) | len(fields) << 8) + [
            self.call("rt_rec")]

    @staticmethod
    def pattern(index: int) -> int:
        """The distinct value a probe puts in its index-th register."""
        return 0x5AC3_0000_0000_0000 + (index + 1) * 0x0001_0001_0001

    def probe_fill(self, op: Syscall) -> tuple[list[str], list[str]]:
        """(registers holding arguments, registers the probe fills with patterns)."""
        used = list(self.abi.arg_regs[:len(op.args)]) + [self.abi.number_reg]
        return used, [r for r in self.abi.probe_gprs if r not in used]

    def render(self, ops: list[MicroOp]) -> str:
        """The batch's own listing: the entry set-up, then the micro-ops (the runtime routines
        are not in it: they are reached at `routines`)."""
        lines = [f"{self.comment_prefix} {self.abi.name}: generated by conformance, do not edit"]
        lines += ["    " + line for line in self.entry()]
        for op in ops:
            for line in self.translate(op):
                plain = line.endswith(":") or line.startswith(self.comment_prefix)
                lines.append(line if plain else "    " + line)
        return "\n".join(lines) + "\n"
