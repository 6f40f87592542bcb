"""A minimal static ELF64 writer: one RWX PT_LOAD segment, no sections, no symbols.

One segment is the shape measured to run natively, under qemu-user and as a kernel's /init.
Its memory size extends past the file so that the tail is zero-filled (the program's state).
Nothing here depends on the ISA beyond the machine number the caller passes in.
"""
from __future__ import annotations

import struct

HEADER_SIZE = 64 + 56  # ELF header + one program header
ET_EXEC, PT_LOAD, PF_RWX = 2, 1, 7
PAGE = 0x1000


def write_elf(payload: bytes, *, machine: int, base: int, entry: int, memsz: int) -> bytes:
    """An executable whose file image (headers + payload) is loaded at `base`.

    `payload` starts right after the headers; `memsz` is the segment's size in memory.
    """
    filesz = HEADER_SIZE + len(payload)
    if memsz < filesz:
        raise ValueError(f"memory size {memsz:#x} smaller than the file image {filesz:#x}")
    if not base <= entry < base + filesz:
        raise ValueError(f"entry {entry:#x} outside the image [{base:#x}, {base + filesz:#x})")
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little-endian, SysV
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        ET_EXEC, machine, 1, entry,
        64,          # program headers right after this header
        0,           # no section headers
        0, 64, 56, 1, 64, 0, 0,
    )
    phdr = struct.pack("<IIQQQQQQ", PT_LOAD, PF_RWX, 0, base, base, filesz, memsz, PAGE)
    return header + phdr + payload
