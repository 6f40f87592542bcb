"""Frame fidelity: the signal frame the reference machine builds holds what a real kernel's does.

A handwritten program per ISA (tests/data/frame/<isa>.s, assembled here with keystone) sends
itself SIGUSR1 and its SA_SIGINFO handler prints what it finds: its arguments, siginfo,
ucontext (flags, link, stack, mask, saved pc relative to the instruction after the call, saved
sp, a callee-saved register and a SIMD register set before the signal, the FP state), where the
frame lies relative to its stack pointer, and the return address. The values must be the same
on the reference machine and on a real kernel of the ISA: aarch64-ref and aarch64-linux-vm,
x86_64-ref and x86_64-native (and x86_64-linux-vm). Fields that depend on the CPU model rather
than the kernel's ABI are compared under a mask, each with the reason (CPU_DEPENDENT).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance.assemble import assemble
from conformance.elf import HEADER_SIZE, write_elf
from e2e import runner_or_skip
from targets.tables import load

BASE, DATA_END = 0x400000, 0x801000
FRAME = re.compile(rb"@@frame:((?: [0-9a-f]{16})+)")
SOURCES = Path(__file__).parent / "data" / "frame"
MARKER, SIMD_MARKER = 0x1122334455667788, 0x0123456789ABCDEF

# The words each program prints, in order (see the comments in its source).
FIELDS = {
    "x86_64": (
        "signo", "si_signo", "si_code", "si_pid - pid", "uc_flags", "uc_link", "ss_sp",
        "ss_flags", "ss_size", "uc_sigmask", "rip - after_kill", "rsp - rsp before", "rbx",
        "rax", "rcx - after_kill", "r11", "eflags", "cs gs fs ss", "err", "trapno", "oldmask",
        "cr2", "fpstate != 0", "fpstate % 64", "xmm8", "mxcsr", "fcw", "fpstate magic1",
        "rsp % 16 at entry", "return address - restorer", "siginfo - rsp", "ucontext - rsp"),
    "aarch64": (
        "signo", "si_signo", "si_code", "si_pid - pid", "uc_flags", "uc_link", "ss_sp",
        "ss_flags", "ss_size", "uc_sigmask", "pc - after_kill", "sp - sp before", "x19", "x0",
        "x29", "x30", "fault_address", "pstate", "first record magic", "first record size",
        "fpsr", "fpcr", "v8", "next record magic", "sp % 16 at entry", "x29 - sp (frame record)",
        "frame record fp", "frame record lr", "x30 - restorer", "siginfo - sp",
        "ucontext - sp"),
}

# Values an ABI fixes, whatever the target (the rest must only agree between targets).
KNOWN = {
    "x86_64": {"signo": 10, "si_signo": 10, "si_code": 0, "si_pid - pid": 0, "uc_flags": 7,
               "ss_flags": 2, "rip - after_kill": 0, "rsp - rsp before": 0, "rbx": MARKER,
               "rax": 0, "fpstate != 0": 1, "fpstate % 64": 0, "xmm8": SIMD_MARKER,
               "fpstate magic1": 0x46505853, "rsp % 16 at entry": 8,
               "return address - restorer": 0, "cs gs fs ss": 0x2B << 48 | 0x33},
    "aarch64": {"signo": 10, "si_signo": 10, "si_code": 0, "si_pid - pid": 0, "uc_flags": 0,
                "ss_flags": 2, "pc - after_kill": 0, "sp - sp before": 0, "x19": MARKER,
                "x0": 0, "x29": 0x2929, "x30": 0x3030, "pstate": 0x6000_0000,
                "first record magic": 0x46508001, "first record size": 0x210,
                "v8": SIMD_MARKER, "sp % 16 at entry": 0, "frame record fp": 0x2929,
                "frame record lr": 0x3030, "x30 - restorer": 0, "siginfo - sp": 0,
                "ucontext - sp": 128},
}

# field -> (mask of the bits compared, why the others depend on the CPU, not the kernel ABI)
CPU_DEPENDENT = {
    "aarch64": {
        "pstate": (0xF000_0000, "Linux sets PSTATE.SSBS (bit 12) for user tasks when the CPU "
                                "has SSBS (qemu-system's max CPU does; the reference's has not)"),
        "next record magic": (0, "a CPU with SVE gets an sve_context after the fpsimd_context "
                                 "(qemu-system's max CPU does; the reference models one without)"),
    },
}

TARGETS = {"x86_64": ("x86_64-ref", "x86_64-native", "x86_64-linux-vm"),
           "aarch64": ("aarch64-ref", "aarch64-linux-vm")}


def frame_elf(isa: str) -> bytes:
    """The inspector program of an ISA, as a static ELF."""
    abi = load(f"linux-{isa}")
    code = assemble((SOURCES / f"{isa}.s").read_text(), abi, BASE + HEADER_SIZE)
    return write_elf(code, machine=abi.elf_machine, base=BASE, entry=BASE + HEADER_SIZE,
                     memsz=DATA_END - BASE)


def inspect(target: str) -> dict[str, int]:
    """Run the inspector on a target (skipped if absent): the handler's words by name."""
    runner = runner_or_skip(target)
    result = runner.run(frame_elf(runner.isa), 120)
    found = FRAME.search(result.output)  # a VM's console has kernel lines around it
    assert found, (f"{target}: no frame line in the output ({result.incident or ''}): "
                   f"{result.output[-300:]!r}")
    words = [int(w, 16) for w in found.group(1).split()]
    names = FIELDS[runner.isa]
    assert len(words) == len(names), f"{target}: {len(words)} words, expected {len(names)}"
    return dict(zip(names, words))


def masked(isa: str, values: dict[str, int]) -> dict[str, int]:
    """The values as compared across targets (CPU-dependent bits cleared)."""
    rules = CPU_DEPENDENT.get(isa, {})
    return {k: v & rules[k][0] if k in rules else v for k, v in values.items()}


@pytest.mark.parametrize("isa", sorted(FIELDS))
def test_the_inspectors_assemble_and_print_every_field_on_the_reference_machine(isa):
    values = inspect(f"{isa}-ref")
    known = {k: values[k] for k in KNOWN[isa]}
    assert known == KNOWN[isa]


@pytest.mark.e2e
@pytest.mark.parametrize("isa, target", [(isa, t) for isa, ts in TARGETS.items()
                                         for t in ts[1:]])
def test_the_reference_frame_matches_a_real_kernel(isa, target):
    real = inspect(target)
    ref = inspect(f"{isa}-ref")
    for name in KNOWN[isa]:
        assert masked(isa, real)[name] == masked(isa, KNOWN[isa])[name], \
            f"{target}: {name} = {real[name]:#x}, the ABI says {KNOWN[isa][name]:#x}"
    differ = {k: (f"{ref[k]:#x}", f"{real[k]:#x}") for k in FIELDS[isa]
              if masked(isa, ref)[k] != masked(isa, real)[k]}
    assert not differ, f"reference vs {target} (reference, real): {differ}"
