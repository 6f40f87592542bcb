"""x86-64 emitter: micro-ops -> Intel-syntax assembly for keystone, plus the runtime routines."""
from __future__ import annotations

from conformance.emit.base import HANDLER_FIELDS, HANDLER_INFO_FIELDS, Emitter
from conformance.lower import Imm, Memory

_JCC = {"eq": "je", "ne": "jne", "lt": "jl", "le": "jle", "gt": "jg", "ge": "jge"}


class X86_64Emitter(Emitter):
    """Lowers micro-ops with rax/r11 as scratch; syscall registers come from the ABI table."""

    isa = "x86_64"
    scratch = "rax"
    scratch2 = "r11"
    record_arg = "edi"
    comment_prefix = "#"

    def jump(self, label: str) -> list[str]:
        return [f"jmp {label}"]

    def branch(self, cond: str, a: str, b: str, label: str) -> list[str]:
        return [f"cmp {a}, {b}", f"{_JCC[cond]} {label}"]

    def load_imm(self, reg: str, value: int) -> list[str]:
        return [f"mov {reg}, {value:#x}" if value >= 0 else f"mov {reg}, {value}"]

    def load_var(self, reg: str, addr: int, size: int) -> list[str]:
        if size == 2:
            return [f"movzx {_low32(reg)}, word ptr [{addr:#x} + riz*1]"]
        if size == 4:
            return [f"movsxd {reg}, dword ptr [{addr:#x} + riz*1]"]
        return [f"mov {reg}, qword ptr [{addr:#x} + riz*1]"]

    def load_code_addr(self, reg: str, label: str) -> list[str]:
        return [f"lea {reg}, [rip + {label}]"]

    def negate(self, reg: str) -> list[str]:
        return [f"neg {reg}"]

    def add_imm(self, reg: str, value: int) -> list[str]:
        return [f"add {reg}, {value}"]

    def probe_syscall(self, op) -> list[str]:
        gprs, simd = self.abi.probe_gprs, self.abi.probe_simd
        lines: list[str] = []
        for i, x in enumerate(simd):
            lines += [f"mov rax, {self.pattern(100 + i):#x}", f"movq {x}, rax", f"movlhps {x}, {x}"]
        for reg, value in zip(self.abi.arg_regs, op.args):
            lines += self.load(reg, value)
        _, fill = self.probe_fill(op)
        lines += [f"mov {r}, {self.pattern(gprs.index(r)):#x}" for r in fill]
        lines += self.load_imm(self.abi.number_reg, op.nr)
        area = 8 * len(gprs) + 16 * len(simd)
        snapshot = [f"push {r}" for r in reversed(gprs)] + [f"sub rsp, {16 * len(simd)}"]
        snapshot += [f"movdqu xmmword ptr [rsp + {16 * i}], {x}" for i, x in enumerate(simd)]
        lines += snapshot + [self.abi.trap] + snapshot
        lines += self.store(self.abi.result_reg, Memory.RET, 8)
        lines += ["mov rdi, rsp", f"lea rsi, [rsp + {area}]", f"mov edx, {len(gprs)}",
                  f"mov ecx, {len(simd)}", self.call("rt_regdiff"), f"add rsp, {2 * area}"]
        return lines

    def store(self, reg: str, addr: int, size: int) -> list[str]:
        if size == 4:
            return [f"mov dword ptr [{addr:#x} + riz*1], {_low32(reg)}"]
        return [f"mov qword ptr [{addr:#x} + riz*1], {reg}"]

    def record(self, kind: str, fields, data) -> list[str]:
        frame = 16 * ((len(fields) + 1) // 2)
        lines = [f"sub rsp, {frame}"] if frame else []
        for i, value in enumerate(fields):
            lines += self.load("rax", value)
            lines.append(f"mov qword ptr [rsp + {8 * i}], rax")
        if data:
            lines += self.load("rcx", data[0]) + self.load("r8", data[1])
        else:
            lines += ["xor ecx, ecx", "xor r8d, r8d"]
        lines += [f"mov edi, {ord(kind)}", "mov rsi, rsp", f"mov edx, {len(fields)}",
                  self.call("rt_record")]
        if frame:
            lines.append(f"add rsp, {frame}")
        return lines

    def store_value(self, value, addr: int) -> list[str]:
        if isinstance(value, Imm) and -(1 << 31) <= value.value < (1 << 31):
            return [f"mov qword ptr [{addr:#x} + riz*1], {value.value}"]  # sign-extended imm32
        return super().store_value(value, addr)

    def call(self, label: str) -> str:
        return f"call {self.routine(label)}"

    def entry(self) -> list[str]:
        return []

    def runtime(self) -> str:
        m, write, trap = Memory, self.abi.nr("write"), self.abi.trap
        return f"""
# rt_record(rdi=kind, rsi=fields, rdx=nfields, rcx=data, r8=datalen): one record, one write(2)
rt_record:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    sub rsp, 520
    mov r12, rsi
    mov r13, rdx
    mov r14, rcx
    mov r15, r8
    mov rbp, rdi
    mov rbx, rsp
    mov dword ptr [rbx], 0x66634040
    mov byte ptr [rbx + 4], 0x3a
    add rbx, 5
    mov rax, qword ptr [{m.CUR_PROG:#x} + riz*1]
    call rt_hex
    mov byte ptr [rbx], 0x2e
    inc rbx
    mov rax, qword ptr [{m.CUR_LPID:#x} + riz*1]
    call rt_hex
    mov byte ptr [rbx], 0x3a
    inc rbx
    mov eax, 1
    lock xadd qword ptr [{m.CUR_SEQ:#x} + riz*1], rax
    call rt_hex
    mov byte ptr [rbx], 0x3a
    mov rax, rbp
    mov byte ptr [rbx + 1], al
    mov byte ptr [rbx + 2], 0x3a
    add rbx, 3
rt_record_fields:
    test r13, r13
    jz rt_record_data
    mov rax, qword ptr [r12]
    call rt_hex
    add r12, 8
    dec r13
    jz rt_record_data
    mov byte ptr [rbx], 0x2c
    inc rbx
    jmp rt_record_fields
rt_record_data:
    test r15, r15
    jle rt_record_sum
    cmp r15, 32
    jle rt_record_semi
    mov r15, 32
rt_record_semi:
    mov byte ptr [rbx], 0x3b
    inc rbx
    lea rsi, [rip + rt_hexdigits]
rt_record_byte:
    movzx eax, byte ptr [r14]
    mov edx, eax
    shr eax, 4
    mov al, byte ptr [rsi + rax]
    mov byte ptr [rbx], al
    and edx, 15
    mov dl, byte ptr [rsi + rdx]
    mov byte ptr [rbx + 1], dl
    add rbx, 2
    inc r14
    dec r15
    jnz rt_record_byte
rt_record_sum:
    mov byte ptr [rbx], 0x3a
    inc rbx
    xor eax, eax
    mov rsi, rsp
rt_record_sum_loop:
    movzx edx, byte ptr [rsi]
    add eax, edx
    inc rsi
    cmp rsi, rbx
    jne rt_record_sum_loop
    and eax, 0xffff
    lea rsi, [rip + rt_hexdigits]
    mov ecx, 12
rt_record_ck:
    mov edx, eax
    shr edx, cl
    and edx, 15
    mov dl, byte ptr [rsi + rdx]
    mov byte ptr [rbx], dl
    inc rbx
    sub ecx, 4
    jns rt_record_ck
    mov byte ptr [rbx], 0x0a
    inc rbx
    mov edi, 1
    mov rsi, rsp
    mov rdx, rbx
    sub rdx, rsp
    mov eax, {write}
    {trap}
    add rsp, 520
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret

# rt_hex: rax as minimal lowercase hex at [rbx], rbx advanced; clobbers rcx rdx rsi
rt_hex:
    lea rsi, [rip + rt_hexdigits]
    mov ecx, 60
rt_hex_skip:
    test ecx, ecx
    jz rt_hex_emit
    mov rdx, rax
    shr rdx, cl
    test dl, 15
    jnz rt_hex_emit
    sub ecx, 4
    jmp rt_hex_skip
rt_hex_emit:
    mov rdx, rax
    shr rdx, cl
    and edx, 15
    mov dl, byte ptr [rsi + rdx]
    mov byte ptr [rbx], dl
    inc rbx
    sub ecx, 4
    jns rt_hex_emit
    ret

{self.handlers()}
# rt_regdiff(rdi=after, rsi=before, rdx=ngpr, rcx=nsimd): snapshots laid out SIMD first
# (16 bytes each), then general registers; bitmasks of differences to PROBE_SIMD / PROBE_GPR
rt_regdiff:
    xor r8d, r8d
    xor r9d, r9d
rt_regdiff_simd:
    cmp r9, rcx
    jge rt_regdiff_gpr_start
    mov rax, qword ptr [rdi]
    cmp rax, qword ptr [rsi]
    jne rt_regdiff_simd_changed
    mov rax, qword ptr [rdi + 8]
    cmp rax, qword ptr [rsi + 8]
    je rt_regdiff_simd_next
rt_regdiff_simd_changed:
    bts r8, r9
rt_regdiff_simd_next:
    add rdi, 16
    add rsi, 16
    inc r9
    jmp rt_regdiff_simd
rt_regdiff_gpr_start:
    mov qword ptr [{m.PROBE_SIMD:#x} + riz*1], r8
    xor r8d, r8d
    xor r9d, r9d
rt_regdiff_gpr:
    cmp r9, rdx
    jge rt_regdiff_done
    mov rax, qword ptr [rdi]
    cmp rax, qword ptr [rsi]
    je rt_regdiff_gpr_next
    bts r8, r9
rt_regdiff_gpr_next:
    add rdi, 8
    add rsi, 8
    inc r9
    jmp rt_regdiff_gpr
rt_regdiff_done:
    mov qword ptr [{m.PROBE_GPR:#x} + riz*1], r8
    ret

# rt_rec(edi = kind | nfields << 8): rt_record of the fields at RECFIELDS, without data
rt_rec:
    mov edx, edi
    shr edx, 8
    and edi, 0xff
    mov esi, {m.RECFIELDS:#x}
    xor ecx, ecx
    xor r8d, r8d
    jmp rt_record

# the watchdog's SIGALRM handler: returning is all it does (wait4 then fails with EINTR)
rt_nop_handler:
    ret

# sa_restorer: the handler returns here with rsp at the signal frame
rt_restorer:
    mov eax, {self.abi.nr("rt_sigreturn")}
    {trap}
    hlt

rt_hexdigits:
    .ascii "0123456789abcdef"
"""


    def handlers(self) -> str:
        """The recording handlers: record what docs/semantics.md says, clobber, return."""
        m, abi, trap = Memory, self.abi, self.abi.trap
        si = abi.layouts["siginfo"]
        st = abi.layouts["stack_t"]
        alt = abi.nr("sigaltstack")
        fault = ""
        if self.faults.corrupt_saved_register:
            off = abi.frame_offset(self.faults.corrupt_saved_register)
            fault = (f"    mov rax, qword ptr [rsp + 112]\n"
                     f"    mov rdx, 0x0badc0de0badc0de\n"
                     f"    mov qword ptr [rax + {off}], rdx  # FAULT: corrupt a saved register")
        clobber = "\n".join(f"    mov {r}, -1" for r in (
            "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12",
            "r13", "r14", "r15"))
        clobber += "\n" + "\n".join(f"    pcmpeqd xmm{i}, xmm{i}" for i in range(16))
        return f"""
# rt_handler_plain / rt_handler_info: the recording handler (rdi = signal, rsi = siginfo)
rt_handler_plain:
    mov rax, rsp
    xor ecx, ecx
    jmp rt_handler_body
rt_handler_info:
    mov rax, rsp
    mov rcx, rsi
rt_handler_body:
    inc qword ptr [{m.DEPTH:#x} + riz*1]
    inc qword ptr [{m.HCOUNT:#x} + riz*1]
    push rbp
    sub rsp, 128
    mov qword ptr [rsp + 112], rax
    mov qword ptr [rsp], rdi
    mov rdx, qword ptr [{m.DEPTH:#x} + riz*1]
    mov qword ptr [rsp + 8], rdx
    xor edx, edx
    mov r8, {m.ALTSTACK:#x}
    cmp rax, r8
    jb rt_handler_off_stack
    add r8, {m.ALTSTACK_SIZE:#x}
    cmp rax, r8
    jae rt_handler_off_stack
    mov edx, 1
rt_handler_off_stack:
    mov qword ptr [rsp + 16], rdx
    mov rdx, rax
    and edx, 15
    mov qword ptr [rsp + 24], rdx
    mov qword ptr [rsp + 120], {HANDLER_FIELDS}
    test rcx, rcx
    jz rt_handler_no_info
    movsxd rdx, dword ptr [rcx + {si.offset("signo")}]
    mov qword ptr [rsp + 48], rdx
    movsxd rdx, dword ptr [rcx + {si.offset("code")}]
    mov qword ptr [rsp + 56], rdx
    movsxd rdx, dword ptr [rcx + {si.offset("pid")}]
    mov qword ptr [rsp + 64], rdx
    mov qword ptr [rsp + 120], {HANDLER_INFO_FIELDS}
rt_handler_no_info:
    mov qword ptr [rsp + 80], 0
    mov qword ptr [rsp + 88], 0
    mov qword ptr [rsp + 96], 0
    xor edi, edi
    lea rsi, [rsp + 80]
    mov eax, {alt}
    {trap}
    movsxd rdx, dword ptr [rsp + {80 + st.offset("flags")}]
    mov qword ptr [rsp + 32], rdx
    lea rdi, [rsp + 80]
    xor esi, esi
    mov eax, {alt}
    {trap}
    mov qword ptr [rsp + 40], rax
    mov edi, 0x53
    mov rsi, rsp
    mov rdx, qword ptr [rsp + 120]
    xor ecx, ecx
    xor r8d, r8d
    call rt_record
{fault}
    dec qword ptr [{m.DEPTH:#x} + riz*1]
    add rsp, 128
    pop rbp
{clobber}
    ret
"""


def _low32(reg: str) -> str:
    if reg.startswith("r") and reg[1:].isdigit():
        return reg + "d"
    return "e" + reg[1:]
