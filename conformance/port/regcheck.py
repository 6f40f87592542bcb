"""What the code right after a syscall checks: its result, a register, or memory.

Old x86-only tests check more than syscall results: that r12 survived a signal handler, that a
buffer holds what was read, that a handler set a flag. None of that is a syscall, so the trace
cannot show it; this module reads the machine code after each trap instead. It decodes the
straight-line x86-64 instructions that follow (at most `WINDOW`, up to the next trap,
unconditional jump, call or return, or the first instruction it does not know) and reports
every `cmp` / `test` in them:

- `result`: of the call's result register (not rewritten since the trap);
- `register`: of another register not written since the trap: the test relies on the call
  preserving it (the IR's `probe` checks exactly that, for every register the ABI says the
  call preserves);
- `memory`: of memory: data the call wrote (a read buffer, an old stack_t) or something a
  signal handler did.

The decoder knows the common integer forms only (mov, lea, ALU ops, cmp, test, jcc, push,
pop, nop; operand-size and REX prefixes); it is a classifier, not a disassembler.
"""
from __future__ import annotations

from dataclasses import dataclass

WINDOW = 12
REGS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
_ALU = {0x00: "add", 0x08: "or", 0x10: "adc", 0x18: "sbb", 0x20: "and", 0x28: "sub",
        0x30: "xor", 0x38: "cmp"}
_GROUP1 = ("add", "or", "adc", "sbb", "and", "sub", "xor", "cmp")


@dataclass(frozen=True)
class Insn:
    """One decoded instruction: what it is, which registers it compares or writes."""

    addr: int
    length: int
    kind: str                    # "cmp", "test", "write", "jcc", "stop", "other"
    text: str
    reads: tuple[str, ...] = ()  # registers a cmp/test compares
    writes: tuple[str, ...] = ()
    memory: bool = False         # a cmp/test with a memory operand


@dataclass(frozen=True)
class Check:
    """A comparison after a call: `kind` is "result", "register" or "memory"."""

    addr: int
    kind: str
    text: str
    regs: tuple[str, ...] = ()


def _modrm(code: bytes, at: int, rex: int) -> tuple[int, int, int, int] | None:
    """(mod, reg, rm, length of modrm + sib + displacement) at `at`."""
    if at >= len(code):
        return None
    b = code[at]
    mod, reg, rm = b >> 6, (b >> 3) & 7 | (rex & 4) << 1, b & 7
    length = 1
    if mod != 3:
        if rm == 4:  # SIB
            if at + 1 >= len(code):
                return None
            length += 1
            if mod == 0 and code[at + 1] & 7 == 5:
                length += 4
        elif mod == 0 and rm == 5:
            length += 4  # rip-relative
        length += {1: 1, 2: 4}.get(mod, 0)
    else:
        rm |= (rex & 1) << 3
    return mod, reg, rm, length


def decode(code: bytes, addr: int) -> Insn | None:
    """The instruction at the start of `code` (loaded at `addr`), or None if unknown."""
    i, rex, opsize16 = 0, 0, False
    while i < len(code) and code[i] == 0x66:
        opsize16, i = True, i + 1
    if i < len(code) and 0x40 <= code[i] <= 0x4F:
        rex, i = code[i], i + 1
    if i >= len(code):
        return None
    op = code[i]
    i += 1
    imm_v = 2 if opsize16 else 4

    def done(length, kind, text, reads=(), writes=(), memory=False):
        return Insn(addr, length, kind, text, tuple(reads), tuple(writes), memory)

    def rm_operand(mod, rm):
        return "[mem]" if mod != 3 else REGS[rm]

    if op == 0x0F:
        if i >= len(code):
            return None
        op2 = code[i]
        if op2 == 0x05:
            return done(i + 1, "stop", "syscall")
        if 0x80 <= op2 <= 0x8F:
            return done(i + 5, "jcc", "jcc rel32")
        if op2 == 0x1F:  # nop r/m
            m = _modrm(code, i + 1, rex)
            return None if m is None else done(i + 1 + m[3], "other", "nop")
        return None
    if op & 0xC7 in (0x00, 0x01, 0x02, 0x03) and op < 0x40:  # ALU r/m, r and r, r/m
        m = _modrm(code, i, rex)
        if m is None:
            return None
        mod, reg, rm, n = m
        name = _ALU[op & 0x38]
        to_reg = op & 2
        a, b = (REGS[reg], rm_operand(mod, rm)) if to_reg else (rm_operand(mod, rm), REGS[reg])
        text = f"{name} {a}, {b}"
        if name == "cmp":
            operands = [a, b]  # in the order the text gives them
            reads = [r for r in operands if r != "[mem]"]
            return done(i + n, "cmp", text, reads, memory=mod != 3)
        dest = REGS[reg] if to_reg else (REGS[rm] if mod == 3 else None)
        return done(i + n, "write", text, writes=[dest] if dest else [])
    if op in (0x3C, 0x3D):
        return done(i + (1 if op == 0x3C else imm_v), "cmp", "cmp rax, imm", ["rax"])
    if op in (0x84, 0x85):
        m = _modrm(code, i, rex)
        if m is None:
            return None
        mod, reg, rm, n = m
        reads = ([REGS[rm]] if mod == 3 else []) + [REGS[reg]]
        return done(i + n, "test", f"test {rm_operand(mod, rm)}, {REGS[reg]}", reads,
                    memory=mod != 3)
    if op in (0x80, 0x81, 0x83):
        m = _modrm(code, i, rex)
        if m is None:
            return None
        mod, digit, rm, n = m
        size = n + (imm_v if op == 0x81 else 1)
        name = _GROUP1[digit & 7]
        text = f"{name} {rm_operand(mod, rm)}, imm"
        if name == "cmp":
            return done(i + size, "cmp", text, [REGS[rm]] if mod == 3 else [],
                        memory=mod != 3)
        return done(i + size, "write", text, writes=[REGS[rm]] if mod == 3 else [])
    if op in (0xF6, 0xF7):
        m = _modrm(code, i, rex)
        if m is None:
            return None
        mod, digit, rm, n = m
        if digit & 7 != 0:
            return done(i + n, "write", "unary", writes=[REGS[rm]] if mod == 3 else [])
        size = n + (1 if op == 0xF6 else imm_v)
        return done(i + size, "test", f"test {rm_operand(mod, rm)}, imm",
                    [REGS[rm]] if mod == 3 else [], memory=mod != 3)
    if op in (0x88, 0x89, 0x8A, 0x8B, 0x8D):
        m = _modrm(code, i, rex)
        if m is None:
            return None
        mod, reg, rm, n = m
        if op in (0x8A, 0x8B, 0x8D):
            return done(i + n, "write", "mov/lea", writes=[REGS[reg]])
        return done(i + n, "write", "mov", writes=[REGS[rm]] if mod == 3 else [])
    if op in (0xC6, 0xC7):
        m = _modrm(code, i, rex)
        if m is None:
            return None
        mod, _digit, rm, n = m
        size = n + (1 if op == 0xC6 else imm_v)
        return done(i + size, "write", "mov imm", writes=[REGS[rm]] if mod == 3 else [])
    if 0xB0 <= op <= 0xBF:
        reg = REGS[(op & 7) | (rex & 1) << 3]
        size = 1 if op < 0xB8 else (8 if rex & 8 else imm_v)
        return done(i + size, "write", f"mov {reg}, imm", writes=[reg])
    if 0x70 <= op <= 0x7F:
        return done(i + 1, "jcc", "jcc rel8")
    if 0x50 <= op <= 0x57:
        return done(i, "other", "push")
    if 0x58 <= op <= 0x5F:
        return done(i, "write", "pop", writes=[REGS[(op & 7) | (rex & 1) << 3]])
    if op == 0x90:
        return done(i, "other", "nop")
    if op in (0xEB, 0xE9, 0xE8, 0xC3, 0xCD, 0xCC, 0xF4):
        return done(i, "stop", "control transfer")
    return None


def checks_after(code: bytes, addr: int, result_reg: str, window: int = WINDOW) -> list[Check]:
    """The comparisons in the straight-line code at `addr` (right after a trap)."""
    checks: list[Check] = []
    written: set[str] = set()
    at = 0
    for _ in range(window):
        insn = decode(code[at:at + 16], addr + at)
        if insn is None or insn.kind == "stop":
            break
        if insn.kind in ("cmp", "test"):
            fresh = [r for r in insn.reads if r not in written]
            if result_reg in fresh:
                checks.append(Check(insn.addr, "result", insn.text, (result_reg,)))
            others = tuple(r for r in fresh if r != result_reg)
            if others:
                checks.append(Check(insn.addr, "register", insn.text, others))
            if insn.memory:
                checks.append(Check(insn.addr, "memory", insn.text))
        written.update(insn.writes)
        at += insn.length
    return checks
