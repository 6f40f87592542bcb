"""Per-ISA machine facts for the reference machine: one table each, looked up by `abi.isa`.

Everything the ABI table already says (syscall registers, numbers, frame register order) stays
there; this holds only what unicorn needs to run the ISA: its arch/mode, register ids, how a
trap instruction reaches a hook, what a fault turns into, and which signal-frame builder
applies. A new ISA is one more `Isa` value here and a frame builder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import unicorn
from unicorn import arm64_const as A
from unicorn import x86_const as X


@dataclass(frozen=True)
class Trap:
    """How one trap instruction (an ABI's `syscall.instruction`) shows up in unicorn.

    `hook` is "insn" (UC_HOOK_INSN for instruction id `insn`) or "intr" (UC_HOOK_INTR with
    interrupt number `intno`); `pc_after` says whether the pc a hook sees is already past the
    instruction; `clobbers` maps a register to what the instruction leaves in it ("next_pc",
    "flags"), as x86-64 `syscall` does with rcx and r11."""

    hook: str
    length: int
    pc_after: bool
    insn: int = 0
    intno: int = 0
    clobbers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Isa:
    """What unicorn needs to run one ISA, and what a process's CPU context consists of."""

    name: str
    uc_arch: int
    uc_mode: int
    regs: Mapping[str, int]          # register name (as the ABI tables spell it) -> unicorn id
    pc: str
    sp: str
    flags: str                       # the condition-flags register a signal frame saves
    context: tuple[str, ...]         # every register a fork copies (pc and sp included)
    simd: tuple[str, ...]            # 128-bit registers, in frame order
    traps: Mapping[str, Trap]        # ABI `syscall.instruction` -> how it traps
    faults: Mapping[int, str]        # unicorn interrupt number -> the signal Linux sends
    frame: str                       # the signal-frame builder (frames.BUILDERS key)
    stack_top: int                   # where the initial stack ends
    initial: Mapping[str, int] = field(default_factory=dict)  # registers a new process starts
    page: int = 0x1000                                       # with, where unicorn's reset differs

    def reg(self, name: str) -> int:
        """The unicorn id of a register; KeyError naming the ISA if it has none."""
        try:
            return self.regs[name]
        except KeyError:
            raise KeyError(f"{self.name}: no register {name!r}") from None

    def trap(self, instruction: str) -> Trap:
        """How an ABI's trap instruction is recognised; ValueError if this ISA has no such trap."""
        try:
            return self.traps[instruction]
        except KeyError:
            known = ", ".join(repr(t) for t in self.traps)
            raise ValueError(f"{self.name}: the reference machine cannot trap on "
                             f"{instruction!r} (known: {known})") from None


def _ids(module, prefix: str, names) -> dict[str, int]:
    return {n: getattr(module, prefix + n.upper()) for n in names}


_X86_GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
             "r12", "r13", "r14", "r15")
_X86_SIMD = tuple(f"xmm{i}" for i in range(16))
_X86_OTHER = ("rip", "rflags", "mxcsr", "fpcw", "fs_base", "gs_base")

X86_64 = Isa(
    name="x86_64",
    uc_arch=unicorn.UC_ARCH_X86,
    uc_mode=unicorn.UC_MODE_64,
    regs=MappingProxyType(_ids(X, "UC_X86_REG_", _X86_GPRS + _X86_SIMD + _X86_OTHER)),
    pc="rip",
    sp="rsp",
    flags="rflags",
    context=_X86_GPRS + _X86_SIMD + _X86_OTHER,
    simd=_X86_SIMD,
    traps=MappingProxyType({
        # `syscall`: the hook sees rip at the instruction; the CPU leaves the return address
        # in rcx and rflags in r11 (Linux never restores them).
        "syscall": Trap("insn", 2, False, insn=X.UC_X86_INS_SYSCALL,
                        clobbers=MappingProxyType({"rcx": "next_pc", "r11": "flags"})),
        "int 0x80": Trap("intr", 2, True, intno=0x80),
    }),
    # #DE, #BP, #UD, #GP, #PF as Linux reports them to user space
    faults=MappingProxyType({0: "SIGFPE", 3: "SIGTRAP", 6: "SIGILL", 13: "SIGSEGV",
                             14: "SIGSEGV"}),
    frame="x86_64",
    stack_top=0x7FFF_F000_0000,
    # the x87/SSE state after exec, and rflags with IF (user mode always has interrupts on;
    # unicorn starts at 0x2 and a signal frame would save that)
    initial=MappingProxyType({"mxcsr": 0x1F80, "fpcw": 0x37F, "rflags": 0x202}),
)

_A64_GPRS = tuple(f"x{i}" for i in range(31))
_A64_SIMD = tuple(f"q{i}" for i in range(32))
_A64_OTHER = ("sp", "pc", "nzcv", "fpcr", "fpsr", "tpidr_el0")

AARCH64 = Isa(
    name="aarch64",
    uc_arch=unicorn.UC_ARCH_ARM64,
    uc_mode=unicorn.UC_MODE_ARM,
    regs=MappingProxyType(_ids(A, "UC_ARM64_REG_", _A64_GPRS + _A64_SIMD + _A64_OTHER)),
    pc="pc",
    sp="sp",
    flags="nzcv",
    context=_A64_GPRS + _A64_SIMD + _A64_OTHER,
    simd=_A64_SIMD,
    traps=MappingProxyType({
        # EXCP_SWI: the exception class of `svc` (any immediate, as Linux); pc is past it
        "svc #0": Trap("intr", 4, True, intno=2),
    }),
    # EXCP_UDEF, EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT, EXCP_BKPT
    faults=MappingProxyType({1: "SIGILL", 3: "SIGSEGV", 4: "SIGSEGV", 7: "SIGTRAP"}),
    frame="aarch64",
    stack_top=0xFFFF_F000_0000,
    initial=MappingProxyType({"nzcv": 0}),  # Linux starts a process with NZCV clear, unicorn
)                                          # with Z set (a signal frame's pstate shows it)

ISAS: Mapping[str, Isa] = MappingProxyType({i.name: i for i in (X86_64, AARCH64)})


def isa_for(name: str) -> Isa:
    """The machine facts of an ISA; ValueError listing the supported ones otherwise."""
    try:
        return ISAS[name]
    except KeyError:
        raise ValueError(f"the reference machine does not run {name!r} "
                         f"(supported: {', '.join(ISAS)})") from None
