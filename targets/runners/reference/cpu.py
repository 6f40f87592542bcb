"""One process's CPU and memory: a unicorn instance over private memory regions.

Each process owns its own `Uc` and host buffers (mapped with mem_map_ptr), so fork is a new
`Uc` plus a memmove of every region and a copy of the register context: about a millisecond,
with no copy-on-switch cost, which matters because the scheduler switches at every record.
Running stops at a trap (the ABI's syscall instruction), a fault, or the end of a time slice.

The program break (brk) is kept here, with the memory: it starts at the page-aligned end of
the highest PT_LOAD segment (Linux without brk randomization), and the heap is one region from
there to the break's page, zero-filled as it grows, dropped page by page as it shrinks; a
fork copies it with the rest.
"""
from __future__ import annotations

import ctypes
import io
from dataclasses import dataclass

import unicorn
from elftools.elf.elffile import ELFFile

from targets.runners.reference.isa import Isa, Trap

STACK_SIZE = 0x40000
_NOWHERE = (1 << 64) - 1
_FAULT_ERRORS = {
    unicorn.UC_ERR_INSN_INVALID: "SIGILL",
}


@dataclass(frozen=True)
class Stop:
    """Why a run ended: "trap" (at `pc`, the trap instruction), "slice" (the instruction limit
    ran out), "fault" (`signal` is what Linux would send; `detail` says what happened), or
    "interrupt" (a `watch` callback asked to stop before the instruction at `pc`)."""

    kind: str
    pc: int = 0
    signal: str = ""
    detail: str = ""


class Cpu:
    """A unicorn CPU with private memory; registers are named as the ABI tables name them."""

    def __init__(self, isa: Isa, trap: Trap, regions: list[tuple[int, ctypes.Array]]):
        self.isa, self.trap = isa, trap
        self.regions = regions
        self.uc = unicorn.Uc(isa.uc_arch, isa.uc_mode)
        for base, buf in regions:
            self.uc.mem_map_ptr(base, len(buf), unicorn.UC_PROT_ALL, ctypes.addressof(buf))
        self._stop: Stop | None = None
        self.brk_base = self.brk = 0  # 0: no program break (a CPU not loaded from an ELF)
        # Every trap instruction of the ISA is hooked: one that is not the ABI's own (x86-64
        # `syscall` under an int-0x80 ABI, or int 0x80, Linux's ia32 entry, under `syscall`)
        # must fault, not slip through unicorn as a no-op.
        for other in isa.traps.values():
            if other.hook == "insn":
                self.uc.hook_add(unicorn.UC_HOOK_INSN, self._on_insn, other, 1, 0, other.insn)
        self.uc.hook_add(unicorn.UC_HOOK_INTR, self._on_intr)

    # -- creation ----------------------------------------------------------------------------

    @classmethod
    def load(cls, elf: bytes, isa: Isa, trap: Trap) -> "Cpu":
        """A CPU with the ELF's PT_LOAD segments in memory, a stack, and pc at the entry."""
        image = ELFFile(io.BytesIO(elf))
        regions: list[tuple[int, ctypes.Array]] = []
        image_end = 0
        for seg in image.iter_segments():
            if seg["p_type"] != "PT_LOAD" or not seg["p_memsz"]:
                continue
            start = seg["p_vaddr"] - seg["p_vaddr"] % isa.page
            end = -(-(seg["p_vaddr"] + seg["p_memsz"]) // isa.page) * isa.page
            buf = ctypes.create_string_buffer(end - start)
            data = seg.data()
            ctypes.memmove(ctypes.addressof(buf) + seg["p_vaddr"] - start, data, len(data))
            regions.append((start, buf))
            image_end = max(image_end, end)
        regions.append((isa.stack_top - STACK_SIZE, ctypes.create_string_buffer(STACK_SIZE)))
        cpu = cls(isa, trap, regions)
        cpu.brk_base = cpu.brk = image_end
        # Linux's initial stack: argc = 0, argv and envp empty, auxv ends at once.
        cpu.set(isa.sp, isa.stack_top - 64)
        cpu.set(isa.pc, image.header["e_entry"])
        for name, value in isa.initial.items():
            cpu.set(name, value)
        return cpu

    def fork(self) -> "Cpu":
        """A copy of this CPU: every memory region and every register of the context."""
        regions = []
        for base, buf in self.regions:
            copy = ctypes.create_string_buffer(len(buf))
            ctypes.memmove(copy, buf, len(buf))
            regions.append((base, copy))
        child = Cpu(self.isa, self.trap, regions)
        child.set_context(self.context())
        child.brk_base, child.brk = self.brk_base, self.brk
        return child

    def set_break(self, addr: int) -> int:
        """brk(addr) as Linux answers it: the break, moved to `addr` unless that is below its
        start or the heap would run into other memory (then unchanged; brk(0) asks)."""
        if not self.brk_base or addr < self.brk_base:
            return self.brk
        page = self.isa.page
        new_end = -(-addr // page) * page
        heap = next((buf for base, buf in self.regions if base == self.brk_base), None)
        if new_end != self.brk_base + (len(heap) if heap is not None else 0):
            others = [(b, buf) for b, buf in self.regions if b != self.brk_base]
            if any(b < new_end and self.brk_base < b + len(buf) for b, buf in others):
                return self.brk  # mm/mmap.c: the next mapping (the stack) is in the way
            if heap is not None:
                self.uc.mem_unmap(self.brk_base, len(heap))
            self.regions = others
            size = new_end - self.brk_base
            if size:
                grown = ctypes.create_string_buffer(size)  # zeroed, as new anonymous pages
                if heap is not None:
                    ctypes.memmove(grown, heap, min(len(heap), size))
                self.uc.mem_map_ptr(self.brk_base, size, unicorn.UC_PROT_ALL,
                                    ctypes.addressof(grown))
                self.regions.append((self.brk_base, grown))
        self.brk = addr
        return addr

    # -- registers and memory ----------------------------------------------------------------

    def get(self, name: str) -> int:
        """A register's value (SIMD registers as 128-bit ints)."""
        return self.uc.reg_read(self.isa.reg(name))

    def set(self, name: str, value: int) -> None:
        """Write a register (values are wrapped to its width)."""
        width = 128 if name in self.isa.simd else 64
        self.uc.reg_write(self.isa.reg(name), value & ((1 << width) - 1))

    def context(self) -> dict[str, int]:
        """Every register of the ISA's context."""
        return {name: self.get(name) for name in self.isa.context}

    def set_context(self, context: dict[str, int]) -> None:
        """Write back a `context()`."""
        for name, value in context.items():
            self.set(name, value)

    def mapped(self, addr: int, size: int) -> bool:
        """Whether [addr, addr+size) lies inside one region."""
        return any(base <= addr and addr + size <= base + len(buf) for base, buf in self.regions)

    def read(self, addr: int, size: int) -> bytes:
        """Bytes of guest memory (MemoryError if unmapped: the caller answers EFAULT)."""
        for base, buf in self.regions:
            if base <= addr and addr + size <= base + len(buf):
                return ctypes.string_at(ctypes.addressof(buf) + addr - base, size)
        raise MemoryError(f"{addr:#x}+{size} is not mapped")

    def write(self, addr: int, data: bytes) -> None:
        """Store bytes in guest memory (MemoryError if unmapped)."""
        for base, buf in self.regions:
            if base <= addr and addr + len(data) <= base + len(buf):
                ctypes.memmove(ctypes.addressof(buf) + addr - base, data, len(data))
                return
        raise MemoryError(f"{addr:#x}+{len(data)} is not mapped")

    def u(self, addr: int, size: int = 8, signed: bool = False) -> int:
        """A little-endian integer from guest memory."""
        return int.from_bytes(self.read(addr, size), "little", signed=signed)

    def put(self, addr: int, value: int, size: int = 8) -> None:
        """Store a little-endian integer (wrapped to `size` bytes)."""
        self.write(addr, (value & ((1 << 8 * size) - 1)).to_bytes(size, "little"))

    # -- running -----------------------------------------------------------------------------

    def run(self, limit: int) -> Stop:
        """Execute from pc until a trap, a fault or `limit` instructions."""
        self._stop = None
        pc = self.get(self.isa.pc)
        try:
            # `until` is an address no code has: emulation ends only by trap, fault or count
            # (with 0 there, a jump to address 0 would end it quietly instead of faulting).
            self.uc.emu_start(pc, _NOWHERE, count=limit)
        except unicorn.UcError as exc:
            at = self.get(self.isa.pc)
            return Stop("fault", at, _FAULT_ERRORS.get(exc.errno, "SIGSEGV"), f"{exc} at {at:#x}")
        if self._stop is not None:
            return self._stop
        # unicorn also ends quietly at x86 `hlt` (a #GP under Linux): that looks like a spin
        return Stop("slice", self.get(self.isa.pc))

    def watch(self, begin: int, end: int, callback) -> None:
        """Call `callback(cpu, address, size)` before each instruction in [begin, end)."""
        self.uc.hook_add(unicorn.UC_HOOK_CODE,
                         lambda _uc, address, size, _data: callback(self, address, size),
                         None, begin, end - 1)

    def interrupt(self, pc: int) -> None:
        """From a `watch` callback: end the run before the instruction at `pc` executes
        (unicorn's emu_stop in a code hook stops before the hooked instruction)."""
        self._stop = Stop("interrupt", pc)
        self.uc.emu_stop()

    def _trapped(self, trap: Trap, pc: int) -> Stop:
        at = pc - trap.length if trap.pc_after else pc
        if trap is self.trap:
            return Stop("trap", at)
        return Stop("fault", at, "SIGILL", f"a trap instruction this ABI does not use at {at:#x}")

    def _on_insn(self, uc, trap: Trap) -> None:
        self._stop = self._trapped(trap, self.get(self.isa.pc))
        uc.emu_stop()

    def _on_intr(self, uc, intno: int, _data) -> None:
        pc = self.get(self.isa.pc)
        trap = next((t for t in self.isa.traps.values()
                     if t.hook == "intr" and t.intno == intno), None)
        if trap is not None:
            self._stop = self._trapped(trap, pc)
        else:
            signal = self.isa.faults.get(intno, "SIGSEGV")
            self._stop = Stop("fault", pc, signal, f"exception {intno} at {pc:#x}")
        uc.emu_stop()
