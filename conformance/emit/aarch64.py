"""aarch64 emitter: micro-ops -> assembly for keystone, plus the runtime routines.

Words of the state area are reached through x28, which holds Memory.BASE; other absolute
addresses are built with movz/movk (keystone 0.9.2 aborts on `:lo12:` relocations);
conditional branches hop over an unconditional `b` so targets may lie beyond +-1 MiB.
"""
from __future__ import annotations

from conformance.emit.base import HANDLER_FIELDS, HANDLER_INFO_FIELDS, Emitter
from conformance.lower import NO_FAULTS, Imm, Memory

_INVERSE = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "le": "gt", "gt": "le"}
_ADDR = "x16"  # ip0: the intra-procedure scratch register, free for address building
# x28 holds Memory.BASE from the entry on (fork copies it, sigreturn restores it), so a word of
# the state area is one `ldr`/`str` instead of movz+movk+ldr/str: a third of a listing's
# instructions. Only emitted program and driver code relies on it (the runtime routines build
# their addresses in x16), and a probe that fills x28 with its pattern sets it back.
_BASE = "x28"
_SCALED_LIMIT = 4096  # unsigned 12-bit offsets, in units of the access size


def _base_offset(addr: int, size: int) -> int | None:
    """`addr` as an offset from Memory.BASE that a scaled ldr/str of `size` bytes encodes."""
    offset = addr - Memory.BASE
    if 0 <= offset < _SCALED_LIMIT * size and offset % size == 0:
        return offset
    return None


class Aarch64Emitter(Emitter):
    """Lowers micro-ops with x9/x10 as scratch and x16 for addresses."""

    isa = "aarch64"
    scratch = "x9"
    scratch2 = "x10"
    record_arg = "x0"
    comment_prefix = "//"

    def __init__(self, abi, faults=NO_FAULTS, routines=None):
        super().__init__(abi, faults, routines)
        self._hops = 0

    def jump(self, label: str) -> list[str]:
        return [f"b {label}"]

    def branch(self, cond: str, a: str, b: str, label: str) -> list[str]:
        self._hops += 1
        hop = f"hop_{self._hops}"
        return [f"cmp {a}, {b}", f"b.{_INVERSE[cond]} {hop}", f"b {label}", f"{hop}:"]

    def load_imm(self, reg: str, value: int) -> list[str]:
        if -0x10000 < value < 0:
            return [f"movn {reg}, #{~value & 0xFFFF:#x}"]
        value &= (1 << 64) - 1
        chunks = [(value >> s) & 0xFFFF for s in (0, 16, 32, 48)]
        lines = [f"movz {reg}, #{chunks[0]:#x}"]
        lines += [f"movk {reg}, #{c:#x}, lsl #{16 * k}" for k, c in enumerate(chunks) if k and c]
        return lines

    def load_var(self, reg: str, addr: int, size: int) -> list[str]:
        width = size if size in (2, 4) else 8
        offset = _base_offset(addr, width)
        where = f"[{_BASE}, #{offset:#x}]" if offset is not None else f"[{_ADDR}]"
        load = {2: f"ldrh w{reg[1:]}, {where}", 4: f"ldrsw {reg}, {where}"}.get(
            size, f"ldr {reg}, {where}")
        return ([] if offset is not None else self.load_imm(_ADDR, addr)) + [load]

    def load_code_addr(self, reg: str, label: str) -> list[str]:
        return [f"adr {reg}, {label}"]

    def negate(self, reg: str) -> list[str]:
        return [f"neg {reg}, {reg}"]

    def add_imm(self, reg: str, value: int) -> list[str]:
        return [f"add {reg}, {reg}, #{value}"] if value >= 0 else [f"sub {reg}, {reg}, #{-value}"]

    def probe_syscall(self, op) -> list[str]:
        gprs, simd = self.abi.probe_gprs, self.abi.probe_simd
        if len(gprs) % 2 or len(simd) % 2:
            raise ValueError(f"{self.abi.name}: probe register lists must have even lengths")
        lines: list[str] = []
        for i, v in enumerate(simd):
            n = v[1:]
            lines += self.load_imm("x9", self.pattern(100 + i)) + [f"fmov d{n}, x9", f"mov v{n}.d[1], x9"]
        for reg, value in zip(self.abi.arg_regs, op.args):
            lines += self.load(reg, value)
        _, fill = self.probe_fill(op)
        for r in fill:
            lines += self.load_imm(r, self.pattern(gprs.index(r)))
        lines += self.load_imm(self.abi.number_reg, op.nr)
        snapshot = [f"stp {gprs[k]}, {gprs[k + 1]}, [sp, #-16]!" for k in range(len(gprs) - 2, -1, -2)]
        snapshot += [f"stp q{simd[k][1:]}, q{simd[k + 1][1:]}, [sp, #-32]!"
                     for k in range(len(simd) - 2, -1, -2)]
        area = 8 * len(gprs) + 16 * len(simd)
        lines += snapshot + [self.abi.trap] + snapshot
        if _BASE in fill:
            lines += self.load_imm(_BASE, Memory.BASE)  # the probe's pattern replaced it
        lines += self.store(self.abi.result_reg, Memory.RET, 8)
        lines += ["mov x0, sp", f"add x1, sp, #{area}", f"mov x2, #{len(gprs)}",
                  f"mov x3, #{len(simd)}", self.call("rt_regdiff"), f"add sp, sp, #{2 * area}"]
        return lines

    def handlers(self) -> str:
        """The recording handlers: record what docs/semantics.md says, clobber, return."""
        m, abi = Memory, self.abi
        si, st = abi.layouts["siginfo"], abi.layouts["stack_t"]
        alt = abi.nr("sigaltstack")
        fault = ""
        if self.faults.corrupt_saved_register:
            off = abi.frame_offset(self.faults.corrupt_saved_register)
            fault = ("    ldr x9, [sp, #112]\n    movz x11, #0xc0de\n"
                     f"    str x11, [x9, #{off}]  // FAULT: corrupt a saved register")
        clobber = "\n".join(f"    mov x{i}, #-1" for i in range(30))
        clobber += "\n" + "\n".join(f"    movi v{i}.2d, #0xffffffffffffffff" for i in range(32))
        return f"""
// rt_handler_plain / rt_handler_info: the recording handler (x0 = signal, x1 = siginfo)
rt_handler_plain:
    mov x9, sp
    mov x10, #0
    b rt_handler_body
rt_handler_info:
    mov x9, sp
    mov x10, x1
rt_handler_body:
    stp x29, x30, [sp, #-16]!
    sub sp, sp, #128
    str x9, [sp, #112]
    str x0, [sp]
    {self._addr("x16", m.DEPTH)}
    ldr x11, [x16]
    add x11, x11, #1
    str x11, [x16]
    str x11, [sp, #8]
    {self._addr("x16", m.HCOUNT)}
    ldr x12, [x16]
    add x12, x12, #1
    str x12, [x16]
    mov x11, #0
    {self._addr("x12", m.ALTSTACK)}
    cmp x9, x12
    b.lo rt_handler_off_stack
    {self._addr("x12", m.ALTSTACK + m.ALTSTACK_SIZE)}
    cmp x9, x12
    b.hs rt_handler_off_stack
    mov x11, #1
rt_handler_off_stack:
    str x11, [sp, #16]
    and x11, x9, #15
    str x11, [sp, #24]
    mov x11, #{HANDLER_FIELDS}
    cbz x10, rt_handler_no_info
    ldrsw x12, [x10, #{si.offset("signo")}]
    str x12, [sp, #48]
    ldrsw x12, [x10, #{si.offset("code")}]
    str x12, [sp, #56]
    ldrsw x12, [x10, #{si.offset("pid")}]
    str x12, [sp, #64]
    mov x11, #{HANDLER_INFO_FIELDS}
rt_handler_no_info:
    str x11, [sp, #120]
    str xzr, [sp, #80]
    str xzr, [sp, #88]
    str xzr, [sp, #96]
    mov x0, #0
    add x1, sp, #80
    mov x8, #{alt}
    svc #0
    ldrsw x11, [sp, #{80 + st.offset("flags")}]
    str x11, [sp, #32]
    add x0, sp, #80
    mov x1, #0
    mov x8, #{alt}
    svc #0
    str x0, [sp, #40]
    mov x0, #0x53
    mov x1, sp
    ldr x2, [sp, #120]
    mov x3, #0
    mov x4, #0
    bl rt_record
{fault}
    {self._addr("x16", m.DEPTH)}
    ldr x11, [x16]
    sub x11, x11, #1
    str x11, [x16]
    add sp, sp, #128
    ldp x29, x30, [sp], #16
{clobber}
    ret
"""

    def store(self, reg: str, addr: int, size: int) -> list[str]:
        src = "w" + reg[1:] if size == 4 else reg
        offset = _base_offset(addr, 4 if size == 4 else 8)
        if offset is not None:
            return [f"str {src}, [{_BASE}, #{offset:#x}]"]
        return self.load_imm(_ADDR, addr) + [f"str {src}, [{_ADDR}]"]

    def record(self, kind: str, fields, data) -> list[str]:
        frame = 16 * ((len(fields) + 1) // 2)
        lines = [f"sub sp, sp, #{frame}"] if frame else []
        for i, value in enumerate(fields):
            lines += self.load("x9", value)
            lines.append(f"str x9, [sp, #{8 * i}]")
        if data:
            lines += self.load("x3", data[0]) + self.load("x4", data[1])
        else:
            lines += ["mov x3, #0", "mov x4, #0"]
        lines += [f"mov x0, #{ord(kind)}", "mov x1, sp", f"mov x2, #{len(fields)}",
                  self.call("rt_record")]
        if frame:
            lines.append(f"add sp, sp, #{frame}")
        return lines

    def store_value(self, value, addr: int) -> list[str]:
        if isinstance(value, Imm) and value.value == 0:
            return self.store("xzr", addr, 8)
        return super().store_value(value, addr)

    def call(self, label: str) -> str:
        return f"bl {self.routine(label)}"

    def entry(self) -> list[str]:
        return self.load_imm(_BASE, Memory.BASE)

    def _addr(self, reg: str, addr: int) -> str:
        return "\n    ".join(self.load_imm(reg, addr))

    def runtime(self) -> str:
        m = Memory
        return f"""
// rt_record(x0=kind, x1=fields, x2=nfields, x3=data, x4=datalen): one record, one write(2)
rt_record:
    stp x29, x30, [sp, #-16]!
    stp x19, x20, [sp, #-16]!
    stp x21, x22, [sp, #-16]!
    stp x23, x24, [sp, #-16]!
    sub sp, sp, #528
    mov x19, x1
    mov x20, x2
    mov x21, x3
    mov x22, x4
    mov x23, x0
    mov x24, sp
    movz w9, #0x4040
    movk w9, #0x6663, lsl #16
    str w9, [x24]
    mov w9, #0x3a
    strb w9, [x24, #4]
    add x24, x24, #5
    {self._addr("x16", m.CUR_PROG)}
    ldr x9, [x16]
    bl rt_hex
    mov w9, #0x2e
    strb w9, [x24], #1
    {self._addr("x16", m.CUR_LPID)}
    ldr x9, [x16]
    bl rt_hex
    mov w9, #0x3a
    strb w9, [x24], #1
    {self._addr("x16", m.CUR_SEQ)}
rt_record_seq:
    ldxr x9, [x16]
    add x10, x9, #1
    stxr w11, x10, [x16]
    cbnz w11, rt_record_seq
    bl rt_hex
    mov w9, #0x3a
    strb w9, [x24], #1
    strb w23, [x24], #1
    strb w9, [x24], #1
rt_record_fields:
    cbz x20, rt_record_data
    ldr x9, [x19], #8
    bl rt_hex
    subs x20, x20, #1
    b.eq rt_record_data
    mov w9, #0x2c
    strb w9, [x24], #1
    b rt_record_fields
rt_record_data:
    cmp x22, #0
    b.le rt_record_sum
    cmp x22, #32
    b.le rt_record_semi
    mov x22, #32
rt_record_semi:
    mov w9, #0x3b
    strb w9, [x24], #1
    adr x13, rt_hexdigits
rt_record_byte:
    ldrb w9, [x21], #1
    lsr w10, w9, #4
    ldrb w10, [x13, x10]
    strb w10, [x24], #1
    and w9, w9, #15
    ldrb w9, [x13, x9]
    strb w9, [x24], #1
    subs x22, x22, #1
    b.ne rt_record_byte
rt_record_sum:
    mov w9, #0x3a
    strb w9, [x24], #1
    mov x9, sp
    mov x10, #0
rt_record_sum_loop:
    ldrb w11, [x9], #1
    add x10, x10, x11
    cmp x9, x24
    b.ne rt_record_sum_loop
    and x10, x10, #0xffff
    adr x13, rt_hexdigits
    mov x12, #12
rt_record_ck:
    lsr x11, x10, x12
    and x11, x11, #15
    ldrb w11, [x13, x11]
    strb w11, [x24], #1
    subs x12, x12, #4
    b.ge rt_record_ck
    mov w9, #0x0a
    strb w9, [x24], #1
    mov x0, #1
    mov x1, sp
    sub x2, x24, x1
    mov x8, #{self.abi.nr("write")}
    svc #0
    add sp, sp, #528
    ldp x23, x24, [sp], #16
    ldp x21, x22, [sp], #16
    ldp x19, x20, [sp], #16
    ldp x29, x30, [sp], #16
    ret

// rt_hex: x9 as minimal lowercase hex at [x24], x24 advanced; clobbers x10-x13
rt_hex:
    adr x13, rt_hexdigits
    mov x10, #60
rt_hex_skip:
    cbz x10, rt_hex_emit
    lsr x11, x9, x10
    tst x11, #15
    b.ne rt_hex_emit
    sub x10, x10, #4
    b rt_hex_skip
rt_hex_emit:
    lsr x11, x9, x10
    and x11, x11, #15
    ldrb w11, [x13, x11]
    strb w11, [x24], #1
    subs x10, x10, #4
    b.ge rt_hex_emit
    ret

{self.handlers()}
// rt_regdiff(x0=after, x1=before, x2=ngpr, x3=nsimd): snapshots laid out SIMD first (16 bytes
// each), then general registers; bitmasks of differences to PROBE_SIMD / PROBE_GPR
rt_regdiff:
    mov x4, #0
    mov x5, #0
    mov x7, #1
rt_regdiff_simd:
    cmp x5, x3
    b.ge rt_regdiff_gpr_start
    ldp x9, x10, [x0], #16
    ldp x11, x12, [x1], #16
    cmp x9, x11
    b.ne rt_regdiff_simd_changed
    cmp x10, x12
    b.eq rt_regdiff_simd_next
rt_regdiff_simd_changed:
    lsl x6, x7, x5
    orr x4, x4, x6
rt_regdiff_simd_next:
    add x5, x5, #1
    b rt_regdiff_simd
rt_regdiff_gpr_start:
    {self._addr("x16", m.PROBE_SIMD)}
    str x4, [x16]
    mov x4, #0
    mov x5, #0
rt_regdiff_gpr:
    cmp x5, x2
    b.ge rt_regdiff_done
    ldr x9, [x0], #8
    ldr x11, [x1], #8
    cmp x9, x11
    b.eq rt_regdiff_gpr_next
    lsl x6, x7, x5
    orr x4, x4, x6
rt_regdiff_gpr_next:
    add x5, x5, #1
    b rt_regdiff_gpr
rt_regdiff_done:
    {self._addr("x16", m.PROBE_GPR)}
    str x4, [x16]
    ret

// rt_rec(x0 = kind | nfields << 8): rt_record of the fields at RECFIELDS, without data
rt_rec:
    lsr x2, x0, #8
    and x0, x0, #0xff
    {self._addr("x1", m.RECFIELDS)}
    mov x3, #0
    mov x4, #0
    b rt_record

// the watchdog's SIGALRM handler: returning is all it does (wait4 then fails with EINTR)
rt_nop_handler:
    ret

// sa_restorer: the handler returns here (x30) with sp at the signal frame
rt_restorer:
    mov x8, #{self.abi.nr("rt_sigreturn")}
    svc #0
    brk #0

rt_hexdigits:
    .ascii "0123456789abcdef"
    .balign 4
"""
