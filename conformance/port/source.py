"""The test ELF to port: which ABIs it may speak, and the checks that refuse what cannot run.

Source ABIs are the dialects old x86-64 tests used, each an ABI table:

- `breenix-legacy`: `int 0x80` with 64-bit registers and Breenix's early numbers
  (targets/abi/breenix-legacy-x86_64.toml);
- `linux-i386`: `int 0x80` from 64-bit code, i.e. Linux's i386 table with 32-bit arguments
  and structs (targets/abi/linux-i386.toml);
- `linux-x86_64`: the `syscall` instruction and Linux's x86-64 numbers.

All three are x86-64 machine code, so the ELF must be ELFCLASS64 and EM_X86_64. It must also
be something the reference machine can load and run from its entry point: static (no
PT_INTERP), with at least one PT_LOAD segment and the entry inside an executable one.
Symbols and sections are not needed (a stripped test ports as well as one with symbols).
A packed test is refused, because what runs first is an unpacker, not the test: the UPX
signature (`UPX!`) anywhere in the file, or an executable segment whose bytes look compressed
(Shannon entropy above `PACKED_ENTROPY` bits per byte over at least `ENTROPY_MIN_BYTES`).
"""
from __future__ import annotations

import io
import math
from collections import Counter
from dataclasses import dataclass

from targets.tables import Abi, load

SOURCE_ABIS = {
    "breenix-legacy": "breenix-legacy-x86_64",
    "linux-i386": "linux-i386",
    "linux-x86_64": "linux-x86_64",
}
EM_X86_64, EM_AARCH64, EM_386 = 62, 183, 3
_MACHINES = {EM_X86_64: "x86-64", EM_AARCH64: "aarch64", EM_386: "i386", 40: "arm",
             243: "riscv"}
PACKED_ENTROPY = 7.2
ENTROPY_MIN_BYTES = 1024
PF_X = 1


class PortError(ValueError):
    """Bad input to `conformance port`: printed as one `error:` line (exit status 2)."""


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD segment: where it goes, its file bytes, its size in memory, executable?"""

    vaddr: int
    data: bytes
    memsz: int
    executable: bool


@dataclass(frozen=True)
class SourceElf:
    """A test ELF that passed the checks, and the ABI it speaks."""

    path: str
    image: bytes
    abi: Abi
    abi_alias: str
    entry: int
    segments: tuple[Segment, ...]

    def code_at(self, addr: int, size: int) -> bytes:
        """Up to `size` file bytes of the image from `addr` (fewer at a segment's end)."""
        for seg in self.segments:
            if seg.vaddr <= addr < seg.vaddr + len(seg.data):
                off = addr - seg.vaddr
                return seg.data[off:off + size]
        return b""


def source_abi(name: str) -> tuple[str, Abi]:
    """The ABI table behind a --from-abi name; PortError listing the known names."""
    if name not in SOURCE_ABIS:
        raise PortError(f"unknown source ABI {name!r} (known: {', '.join(SOURCE_ABIS)})")
    return name, load(SOURCE_ABIS[name])


def entropy(data: bytes) -> float:
    """Shannon entropy in bits per byte."""
    counts = Counter(data)
    total = len(data)
    return -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0


def load_source(path: str, image: bytes, abi_name: str) -> SourceElf:
    """Check a test ELF for `conformance port`; PortError naming the file and the problem."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    alias, abi = source_abi(abi_name)
    if image[:4] != b"\x7fELF":
        raise PortError(f"{path}: not an ELF file (no \\x7fELF magic)")
    try:
        elf = ELFFile(io.BytesIO(image))
        machine = elf.header["e_machine"]
        elfclass = elf.elfclass
        segments = list(elf.iter_segments())
    except (ELFError, ValueError, KeyError) as exc:
        raise PortError(f"{path}: not a readable ELF file ({exc})") from None
    number = machine if isinstance(machine, int) else _em_number(machine)
    if number != abi.elf_machine or elfclass != 64:
        what = _MACHINES.get(number, f"machine {machine}")
        extra = (" (linux-i386 here means `int 0x80` from 64-bit code: 32-bit i386 ELFs "
                 "are not supported)" if alias == "linux-i386" and elfclass == 32 else "")
        raise PortError(f"{path}: a {elfclass}-bit {what} ELF; --from-abi {alias} reads "
                        f"64-bit x86-64 ELFs (EM_X86_64){extra}")
    if any(s["p_type"] == "PT_INTERP" for s in segments):
        raise PortError(f"{path}: dynamically linked (PT_INTERP): only static test ELFs "
                        "can be ported")
    loads = [Segment(s["p_vaddr"], s.data(), s["p_memsz"], bool(s["p_flags"] & PF_X))
             for s in segments if s["p_type"] == "PT_LOAD"]
    if not loads:
        raise PortError(f"{path}: no PT_LOAD segment: nothing to run (a stripped or damaged "
                        "binary?)")
    entry = elf.header["e_entry"]
    if not any(s.executable and s.vaddr <= entry < s.vaddr + s.memsz for s in loads):
        raise PortError(f"{path}: the entry point {entry:#x} is not in an executable PT_LOAD "
                        "segment")
    if b"UPX!" in image:
        raise PortError(f"{path}: packed with UPX (signature 'UPX!'): unpack it first "
                        "(upx -d) and port the result")
    for seg in loads:
        if seg.executable and len(seg.data) >= ENTROPY_MIN_BYTES:
            bits = entropy(seg.data)
            if bits > PACKED_ENTROPY:
                raise PortError(f"{path}: looks packed or encrypted (the executable segment at "
                                f"{seg.vaddr:#x} has {bits:.2f} bits of entropy per byte; "
                                f"code has under {PACKED_ENTROPY}): unpack it first")
    return SourceElf(path, image, abi, alias, entry, tuple(loads))


def _em_number(name: str) -> int:
    from elftools.elf.enums import ENUM_E_MACHINE
    return ENUM_E_MACHINE.get(name, -1)
