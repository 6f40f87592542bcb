"""Hand-written x86-64 test programs (keystone, Intel syntax) as static ELFs.

The shape of an old standalone test: one RWX PT_LOAD segment at `IMAGE_BASE` holding the
headers and the code (entry: the first instruction), then zero-filled memory up to
`IMAGE_END`; `BSS` (0x420000) onwards is free for buffers. `tests/data/port/*.s` are built
with this; a first line `# abi: NAME` names the source ABI they speak.

keystone 0.9.2 quirk (measured): a 64-bit load from an absolute address into a register other
than rax (`mov rdi, qword ptr [0x420040]`) is encoded rip-relative with the absolute value as
the displacement. Load the address into a register first (`mov rsi, X` / `mov rdi, [rsi]`);
32-bit loads, stores and compares with absolute addresses are encoded correctly.
"""
from __future__ import annotations

import re

from conformance.assemble import assemble
from conformance.elf import HEADER_SIZE, write_elf
from targets.tables import Abi

IMAGE_BASE = 0x400000
BSS = 0x420000
IMAGE_END = 0x440000
_ABI_LINE = re.compile(r"^#\s*abi:\s*(\S+)", re.MULTILINE)


def declared_abi(source: str) -> str | None:
    """The `# abi: NAME` a test source declares, if any."""
    m = _ABI_LINE.search(source)
    return m.group(1) if m else None


def build_test(source: str, abi: Abi) -> bytes:
    """Assemble `source` for `abi`'s ISA and link it as a standalone static ELF."""
    code_at = IMAGE_BASE + HEADER_SIZE
    code = assemble(source, abi, code_at)
    if code_at + len(code) > BSS:
        raise ValueError(f"test code of {len(code)} bytes runs into BSS at {BSS:#x}")
    return write_elf(code, machine=abi.elf_machine, base=IMAGE_BASE, entry=code_at,
                     memsz=IMAGE_END - IMAGE_BASE)
