"""Signal frames as Linux lays them out: the x86-64 and aarch64 rt_sigframe in guest memory.

`push` places a frame below the stack pointer (or at the top of the alternate stack), saves
every register into it and enters the handler as Linux does; `pop` is rt_sigreturn: every
register comes back FROM THE FRAME, so a handler that edits its ucontext changes what resumes.
Where a handler finds each saved general register is the ABI table's [frame] section
(`gregs_from_sp`, `gregs`); the rest of each layout is the ISA's own (Linux sources named in
each class), checked against the table when a builder is made.
"""
from __future__ import annotations

from dataclasses import dataclass

from targets.runners.reference.cpu import Cpu
from targets.tables import Abi


@dataclass(frozen=True)
class Delivery:
    """One handler invocation: where it goes and what its frame must hold."""

    signo: int
    handler: int
    restorer: int | None          # sa_restorer when SA_RESTORER is set
    siginfo: bytes | None         # copied only with SA_SIGINFO, as Linux does
    mask: int                     # uc_sigmask: the mask rt_sigreturn puts back
    stack: tuple[int, int, int]   # uc_stack: (ss_sp, ss_flags, ss_size) at delivery
    switch_to: int | None         # top of the alternate stack when the frame moves there


class BadFrame(Exception):
    """A frame cannot be set up or restored (Linux then forces SIGSEGV)."""


def _round_down(value: int, align: int) -> int:
    return value & ~(align - 1)


class _Builder:
    """What both layouts share: the stack_t and sigset parts of the ucontext."""

    def __init__(self, abi: Abi):
        self.abi = abi
        self.stack_t = abi.layouts["stack_t"]
        self.sigset = abi.limits["sigset_bytes"]
        self.info_size = abi.layouts["siginfo"].size

    @staticmethod
    def _put(buf: bytearray, offset: int, value: int, size: int = 8) -> None:
        buf[offset:offset + size] = (value & ((1 << 8 * size) - 1)).to_bytes(size, "little")

    @staticmethod
    def _get(buf: bytes, offset: int, size: int = 8) -> int:
        return int.from_bytes(buf[offset:offset + size], "little")

    def _put_stack(self, buf: bytearray, offset: int, stack: tuple[int, int, int]) -> None:
        for name, value in zip(("sp", "flags", "ss_size"), stack):
            at, size = self.stack_t.fields[name]
            self._put(buf, offset + at, value, size)


class X86_64Frame(_Builder):
    """arch/x86/kernel/signal_64.c: pretcode, ucontext {flags, link, stack_t, sigcontext_64,
    sigmask}, siginfo; the xsave area 64-aligned above it, as Linux writes it on a CPU with
    XSAVE and only the x87 and SSE features (arch/x86/kernel/fpu/signal.c: the fxsave layout,
    its software bytes, the xsave header, FP_XSTATE_MAGIC2 after it); rsp % 16 == 8 at entry."""

    REDZONE = 128
    RETURN_SP = 8                    # sp at rt_sigreturn, from the frame: `ret` took pretcode
    UCONTEXT = 8                     # after pretcode
    SIGCONTEXT_WORDS = 32            # struct sigcontext_64 is 256 bytes
    AFTER_GREGS = ("eflags", "segments", "err", "trapno", "oldmask", "cr2", "fpstate")
    FXSAVE, FX_MXCSR, FX_MXCSR_MASK, FX_XMM = 512, 24, 28, 160
    XSAVE = FXSAVE + 64              # the legacy area and the xsave header: no extended state
    MATH = XSAVE + 4                 # and FP_XSTATE_MAGIC2 after it
    SW_BYTES = 464                   # struct _fpx_sw_bytes, in the legacy area's spare bytes
    MAGIC1, MAGIC2 = 0x46505853, 0x46505845
    XFEATURES = 0x3                  # x87 | SSE
    UC_FLAGS = 0x7                   # UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
    SEGMENTS = 0x33 | 0x2B << 48     # __USER_CS, and __USER_DS in the ss slot
    FIX_EFLAGS = 0x50DD5             # AC OF DF TF SF ZF AF PF CF RF: what sigreturn takes
    ENTRY_CLEARS = 0x10500           # DF, TF and RF are clear when a handler starts
    FPU_INIT = {"mxcsr": 0x1F80, "fpcw": 0x37F}  # handlers start with a fresh FPU state

    def __init__(self, abi: Abi, isa):
        super().__init__(abi)
        self.isa = isa
        self.gregs = abi.frame_gregs_from_sp
        mcontext = self.UCONTEXT + 16 + self.stack_t.size  # after uc_flags, uc_link, uc_stack
        if self.gregs != mcontext:
            raise ValueError(f"{abi.name}: frame.gregs_from_sp = {self.gregs}, but the x86-64 "
                             f"ucontext puts the registers at {mcontext}")
        self.slots = abi.frame_gregs + self.AFTER_GREGS
        self.sigmask = self.gregs + 8 * self.SIGCONTEXT_WORDS
        self.info = self.sigmask + self.sigset
        self.size = self.info + self.info_size

    def push(self, cpu: Cpu, d: Delivery) -> int:
        """Build the frame and enter the handler; the frame's address."""
        if d.restorer is None:
            raise BadFrame("x86-64 Linux needs SA_RESTORER to return from a handler")
        ctx = cpu.context()
        sp = ctx["rsp"] - self.REDZONE if d.switch_to is None else d.switch_to
        fx = _round_down(sp - self.MATH, 64)
        frame = _round_down(fx - self.size, 16) - 8
        buf = bytearray(fx + self.MATH - frame)
        self._put(buf, 0, d.restorer)
        self._put(buf, self.UCONTEXT, self.UC_FLAGS)
        self._put_stack(buf, self.UCONTEXT + 16, d.stack)
        extra = {"eflags": ctx["rflags"], "segments": self.SEGMENTS, "fpstate": fx}
        for k, name in enumerate(self.slots):
            self._put(buf, self.gregs + 8 * k, ctx[name] if name in ctx else extra.get(name, 0))
        self._put(buf, self.sigmask, d.mask, self.sigset)
        if d.siginfo is not None:
            buf[self.info:self.info + len(d.siginfo)] = d.siginfo
        at = fx - frame
        self._put(buf, at, ctx["fpcw"], 2)
        self._put(buf, at + self.FX_MXCSR, ctx["mxcsr"], 4)
        self._put(buf, at + self.FX_MXCSR_MASK, 0xFFFF, 4)
        for i, reg in enumerate(self.isa.simd):
            self._put(buf, at + self.FX_XMM + 16 * i, ctx[reg], 16)
        sw = at + self.SW_BYTES  # magic1, extended_size, xfeatures, xstate_size
        self._put(buf, sw, self.MAGIC1, 4)
        self._put(buf, sw + 4, self.MATH, 4)
        self._put(buf, sw + 8, self.XFEATURES)
        self._put(buf, sw + 16, self.XSAVE, 4)
        self._put(buf, at + self.FXSAVE, self.XFEATURES)  # xstate_bv: Linux always sets FP|SSE
        self._put(buf, at + self.XSAVE, self.MAGIC2, 4)
        cpu.write(frame, bytes(buf))
        entry = {"rdi": d.signo, "rsi": frame + self.info, "rdx": frame + self.UCONTEXT,
                 "rax": 0, "rsp": frame, "rip": d.handler,
                 "rflags": ctx["rflags"] & ~self.ENTRY_CLEARS}
        entry.update({reg: 0 for reg in self.isa.simd}, **self.FPU_INIT)
        cpu.set_context(entry)
        return frame

    def pop(self, cpu: Cpu) -> None:
        """rt_sigreturn: the frame is RETURN_SP below rsp."""
        frame = cpu.get("rsp") - self.RETURN_SP
        try:
            buf = cpu.read(frame, self.size)
        except MemoryError as exc:
            raise BadFrame(str(exc)) from None
        regs = {name: self._get(buf, self.gregs + 8 * k) for k, name in enumerate(self.slots)}
        ctx = {name: regs[name] for name in self.abi.frame_gregs}
        flags = cpu.get("rflags")
        ctx["rflags"] = flags & ~self.FIX_EFLAGS | regs["eflags"] & self.FIX_EFLAGS
        ctx.update({reg: 0 for reg in self.isa.simd}, **self.FPU_INIT)
        if regs["fpstate"]:
            try:
                fx = cpu.read(regs["fpstate"], self.FXSAVE)
            except MemoryError as exc:
                raise BadFrame(str(exc)) from None
            ctx["fpcw"] = self._get(fx, 0, 2)
            ctx["mxcsr"] = self._get(fx, self.FX_MXCSR, 4)
            for i, reg in enumerate(self.isa.simd):
                ctx[reg] = self._get(fx, self.FX_XMM + 16 * i, 16)
        cpu.set_context(ctx)


class Aarch64Frame(_Builder):
    """arch/arm64/kernel/signal.c: rt_sigframe {siginfo, ucontext {flags, link, stack_t,
    sigmask padded to 128 bytes, sigcontext {fault_address, regs[31], sp, pc, pstate,
    __reserved[4096]: fpsimd_context, terminator}}}, a {fp, lr} record above it; sp 16-aligned."""

    RECORD = 16                     # struct frame_record {fp, lr}
    RETURN_SP = 0                   # sp at rt_sigreturn is the frame itself
    SIGSET_SPACE = 128              # uc_sigmask plus __unused: 1024 bits
    AFTER_GREGS = ("pstate",)
    RESERVED = 4096
    FPSIMD_MAGIC, FPSIMD_SIZE = 0x46508001, 528
    NZCV = 0xF000_0000              # the pstate bits user code owns

    def __init__(self, abi: Abi, isa):
        super().__init__(abi)
        self.isa = isa
        self.uc = self.info_size                                     # ucontext after siginfo
        self.uc_sigmask = self.uc + 16 + self.stack_t.size
        mcontext = -(-(self.uc_sigmask + self.SIGSET_SPACE) // 16) * 16
        self.gregs = abi.frame_gregs_from_sp
        if self.gregs != mcontext + 8:                               # after fault_address
            raise ValueError(f"{abi.name}: frame.gregs_from_sp = {self.gregs}, but the aarch64 "
                             f"sigcontext puts the registers at {mcontext + 8}")
        self.slots = abi.frame_gregs + self.AFTER_GREGS
        self.reserved = -(-(self.gregs + 8 * len(self.slots)) // 16) * 16
        self.size = self.reserved + self.RESERVED

    def push(self, cpu: Cpu, d: Delivery) -> int:
        """Build the frame and enter the handler; the frame's address."""
        ctx = cpu.context()
        sp = ctx["sp"] if d.switch_to is None else d.switch_to
        record = _round_down(sp - self.RECORD, 16)
        frame = record - self.size
        buf = bytearray(self.size + self.RECORD)
        if d.siginfo is not None:
            buf[:len(d.siginfo)] = d.siginfo
        self._put_stack(buf, self.uc + 16, d.stack)
        self._put(buf, self.uc_sigmask, d.mask, self.sigset)
        extra = {"pstate": ctx["nzcv"] & self.NZCV}
        for k, name in enumerate(self.slots):
            self._put(buf, self.gregs + 8 * k, ctx[name] if name in ctx else extra[name])
        at = self.reserved
        self._put(buf, at, self.FPSIMD_MAGIC, 4)
        self._put(buf, at + 4, self.FPSIMD_SIZE, 4)
        self._put(buf, at + 8, ctx["fpsr"], 4)
        self._put(buf, at + 12, ctx["fpcr"], 4)
        for i, reg in enumerate(self.isa.simd):
            self._put(buf, at + 16 + 16 * i, ctx[reg], 16)
        # the terminator record after it is zero already
        self._put(buf, self.size, ctx["x29"])
        self._put(buf, self.size + 8, ctx["x30"])
        cpu.write(frame, bytes(buf))
        # Without SA_RESTORER Linux returns through the vDSO's sigtramp, which this machine
        # lacks: the handler then returns to 0 and faults.
        entry = {"x0": d.signo, "sp": frame, "x29": record, "x30": d.restorer or 0,
                 "pc": d.handler}
        if d.siginfo is not None:
            entry.update(x1=frame, x2=frame + self.uc)
        cpu.set_context(entry)
        return frame

    def pop(self, cpu: Cpu) -> None:
        """rt_sigreturn: the frame is at sp, which must be 16-aligned."""
        frame = cpu.get("sp") - self.RETURN_SP
        if frame % 16:
            raise BadFrame(f"sp {frame:#x} is not 16-byte aligned")
        try:
            buf = cpu.read(frame, self.size)
        except MemoryError as exc:
            raise BadFrame(str(exc)) from None
        regs = {name: self._get(buf, self.gregs + 8 * k) for k, name in enumerate(self.slots)}
        ctx = {name: regs[name] for name in self.abi.frame_gregs}
        ctx["nzcv"] = regs["pstate"] & self.NZCV
        at = self.reserved
        while True:  # walk the records in __reserved to the FPSIMD one
            magic, size = self._get(buf, at, 4), self._get(buf, at + 4, 4)
            if magic == self.FPSIMD_MAGIC and size >= self.FPSIMD_SIZE:
                break
            if magic == 0 or size < 8 or at + size >= self.size:
                raise BadFrame("no fpsimd_context record in the signal frame")
            at += size
        ctx["fpsr"], ctx["fpcr"] = self._get(buf, at + 8, 4), self._get(buf, at + 12, 4)
        for i, reg in enumerate(self.isa.simd):
            ctx[reg] = self._get(buf, at + 16 + 16 * i, 16)
        cpu.set_context(ctx)


BUILDERS = {"x86_64": X86_64Frame, "aarch64": Aarch64Frame}


def builder_for(abi: Abi, isa) -> X86_64Frame | Aarch64Frame:
    """The frame builder of an ISA (its `Isa.frame` names it), checked against the ABI table."""
    try:
        return BUILDERS[isa.frame](abi, isa)
    except KeyError:
        raise ValueError(f"no signal-frame builder {isa.frame!r} "
                         f"(known: {', '.join(BUILDERS)})") from None
