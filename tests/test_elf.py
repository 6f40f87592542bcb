"""The ELF writer, checked with pyelftools."""
from __future__ import annotations

import io

import pytest
from elftools.elf.elffile import ELFFile

from conformance.batch import IMAGE_BASE, build
from conformance.elf import HEADER_SIZE, write_elf
from conformance.lower import Memory
from targets import tables


def test_header_and_single_segment():
    elf = write_elf(b"\x90" * 10, machine=62, base=0x400000, entry=0x400000 + HEADER_SIZE,
                    memsz=0x10000)
    f = ELFFile(io.BytesIO(elf))
    assert f.elfclass == 64 and f.little_endian
    assert f.header["e_type"] == "ET_EXEC" and f.header["e_machine"] == "EM_X86_64"
    assert f.header["e_entry"] == 0x400000 + HEADER_SIZE
    (seg,) = list(f.iter_segments())
    assert seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] == 0x400000 and seg["p_offset"] == 0
    assert seg["p_filesz"] == len(elf) and seg["p_memsz"] == 0x10000
    assert seg["p_flags"] == 7


def test_rejects_entry_outside_the_image():
    with pytest.raises(ValueError, match="entry"):
        write_elf(b"", machine=62, base=0x400000, entry=0x500000, memsz=0x1000)


@pytest.mark.parametrize("abi_name,machine", [("linux-x86_64", "EM_X86_64"),
                                              ("linux-aarch64", "EM_AARCH64")])
def test_batch_elf_per_isa(parse, abi_name, machine):
    program = parse('r, w = pipe()\nwrite(w, "hello")\n')
    elf = build([program], tables.load(abi_name)).elf
    f = ELFFile(io.BytesIO(elf))
    assert f.header["e_machine"] == machine
    (seg,) = list(f.iter_segments())
    assert seg["p_vaddr"] == IMAGE_BASE
    assert seg["p_memsz"] == Memory.END - IMAGE_BASE
    assert b"hello" in seg.data()
