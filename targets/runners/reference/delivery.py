"""Signal delivery on the reference machine: the model decides, the machine builds the frames.

`oracle.kernel.Kernel.deliver` says which handler frames to set up (and the model alone
decides masks, dispositions, the alternate stack and interrupted calls); this module turns
each `Frame` into a real rt_sigframe with the guest's handler address and restorer, and runs
rt_sigreturn from the frame in guest memory. The machine's own per-process table keeps what
the model abstracts away: the handler and restorer addresses a program installed.
"""
from __future__ import annotations

from oracle.kernel import Frame
from oracle.signals import SigInfo
from targets.runners.reference.frames import BadFrame, Delivery, builder_for


class Deliverer:
    """Frames for one machine (see the module docstring)."""

    def __init__(self, machine):
        self.machine, self.kernel, self.codec = machine, machine.kernel, machine.codec
        self.abi = machine.abi
        self.builder = builder_for(machine.abi, machine.isa)
        self.sp = machine.isa.sp

    def deliver(self, proc) -> None:
        """Return to user mode: take signals, push the frames the model set up, in order."""
        for frame in self.kernel.deliver(proc.pid):
            self.push(proc, frame)

    def push(self, proc, frame: Frame) -> None:
        """One handler invocation in guest memory, entered as Linux enters it."""
        codec = self.codec
        signo = codec.signo(frame.signal)
        handler, restorer_bit, restorer = proc.actions.get(signo, (0, 0, 0))
        siginfo = None
        if "SA_SIGINFO" in frame.flags:
            siginfo = self.siginfo(signo, frame.info)
        stack = frame.saved_stack
        sp = proc.cpu.get(self.sp)
        switch_to = None
        if stack.enabled:
            base, size = stack.base, codec.size(stack.size)
            # Linux's on_sig_stack: never while SS_AUTODISARM is set
            on = base < sp <= base + size and "SS_AUTODISARM" not in stack.flags
            if "SA_ONSTACK" in frame.flags and not on:
                switch_to = base + size
            lands = switch_to is not None or base < sp <= base + size
            if lands != frame.on_altstack:
                self.machine.note(f"pid {proc.pid}: {frame.signal}: the model says the frame "
                                  f"is {'' if frame.on_altstack else 'not '}on the alternate "
                                  f"stack, sp {sp:#x} says otherwise")
        delivery = Delivery(signo, handler, restorer if restorer_bit else None, siginfo,
                            codec.sigbits(frame.restore_mask), codec.stack_out(stack), switch_to)
        try:
            self.builder.push(proc.cpu, delivery)
        except (BadFrame, MemoryError) as exc:
            self.machine.note(f"pid {proc.pid}: cannot set up a {frame.signal} frame ({exc})")
            self.force(proc, "SIGSEGV")
            return
        proc.depth += 1

    def siginfo(self, signo: int, info: SigInfo) -> bytes:
        """The siginfo a SA_SIGINFO handler receives."""
        layout = self.abi.layouts["siginfo"]
        buf = bytearray(layout.size)
        for name, value in (("signo", signo), ("code", self.codec.si_code(info.code)),
                            ("pid", info.pid)):
            off, size = layout.fields[name]
            buf[off:off + size] = (value & ((1 << 8 * size) - 1)).to_bytes(size, "little")
        return bytes(buf)

    def sigreturn(self, proc) -> bool:
        """rt_sigreturn: registers from the frame, then the model restores mask and stack.
        False if the frame was bad (the process then got SIGSEGV)."""
        kept = {reg: proc.cpu.get(reg) for reg in self.machine.sigreturn_skips}
        try:
            self.builder.pop(proc.cpu)
            proc.cpu.set_context(kept)  # the seeded bug (Machine's sigreturn_skips), if any
            self.kernel.syscall(proc.pid, "rt_sigreturn")
        except (BadFrame, RuntimeError) as exc:
            self.machine.note(f"pid {proc.pid}: rt_sigreturn: {exc}")
            self.force(proc, "SIGSEGV")
            return False
        proc.depth -= 1
        return True

    def force(self, proc, sig: str) -> None:
        """A synchronous signal (a fault, a bad frame), delivered at once.

        Linux's force_sig unblocks and un-ignores the signal; the model has no such call, so
        when the signal neither ran a handler nor ended the process, SIGKILL ends it (the
        faulting instruction would only fault again)."""
        depth = proc.depth
        self.kernel.send_signal(proc.pid, sig, SigInfo(sig, "SI_KERNEL", 0), thread=True)
        self.deliver(proc)
        if self.kernel.runnable(proc.pid) and proc.depth == depth:
            self.machine.note(f"pid {proc.pid}: {sig} is blocked or ignored: killed instead")
            self.kernel.send_signal(proc.pid, "SIGKILL")
            self.deliver(proc)
