"""Raw syscalls -> the kernel model's calls: the process, fd, pipe, wait and group calls.

A raw call arrives as a number and six register values; the ABI table names it, `Codec`
turns its numbers and structs into the model's vocabulary, `oracle.kernel.Kernel` answers, and
the answer goes back as a register value and out-parameters in guest memory. The signal, timer
and poll calls are in `sigcalls`. What the machine does with an answer (advance pc, leave it at
the trap to repeat the call, park, end) is the `Outcome` a handler returns. select is in
`selectcall`; brk, which the model does not keep, is the process's `Cpu`'s (`set_break`).
"""
from __future__ import annotations

from conformance.events import Errno
from conformance.ir import PIPE_FLAGS, WAIT_FLAGS, Flags
from oracle.kernel import Blocked, Done, Gone
from targets.runners.reference.codec import Codec
from targets.runners.reference.outcomes import BLOCK, EXIT, HALT, PARK, Outcome, Return, s32
from targets.runners.reference.selectcall import SelectCalls
from targets.runners.reference.sigcalls import SignalCalls


class Syscalls(SignalCalls, SelectCalls):
    """Every raw call the reference machine answers, for one ABI and one machine: a call the
    table names `x` is answered by the method `_sys_x` (ENOSYS, noted, if there is none)."""

    def __init__(self, machine, codec: Codec):
        self.machine, self.kernel, self.codec = machine, machine.kernel, codec
        self.abi = codec.abi
        self.names = {nr: name for name, nr in self.abi.syscalls.items()}
        self.int_size = self.abi.layouts["pollfd"].fields["fd"][1]  # a C int, as pollfd.fd
        self.select_started: dict[int, int] = {}  # pid -> when its blocked select began

    def handle(self, proc, nr: int, args: list[int]) -> Return | Outcome:
        """Answer one raw call of `proc`."""
        name = self.names.get(nr)
        handler = getattr(self, "_sys_" + name, None) if name else None
        if handler is None:
            self.machine.note(f"pid {proc.pid}: syscall {nr} ({name or 'unknown'}) is not "
                              "modelled: ENOSYS")
            return self.fail("ENOSYS")
        try:
            return handler(proc, *args)
        except MemoryError as exc:
            self.machine.note(f"pid {proc.pid}: {name}: {exc}: EFAULT")
            return self.fail("EFAULT")

    # -- helpers -----------------------------------------------------------------------------

    def fail(self, errno: str) -> Return:
        """A failed call."""
        return Return(self.codec.errno(Errno(errno)))

    def call(self, proc, name: str, *args, ok=None) -> Return | Outcome:
        """Run a model call; on success `ok(result)` stores out-values and gives the value."""
        return self.answer(self.kernel.syscall(proc.pid, name, args), ok)

    def answer(self, result, ok=None) -> Return | Outcome:
        """A model answer as an outcome (see `call`)."""
        if isinstance(result, Blocked):
            return BLOCK
        if isinstance(result, Gone):
            return EXIT
        assert isinstance(result, Done)
        if isinstance(result.value, Errno):
            return Return(self.codec.errno(result.value))
        return Return(ok(result) if ok else result.value)

    # -- fds and pipes -----------------------------------------------------------------------

    def _sys_read(self, proc, fd, buf, count, *_):
        def ok(result: Done) -> int:
            if result.data:
                proc.cpu.write(buf, result.data)
            return result.value
        return self.call(proc, "read", s32(fd), count, ok=ok)

    def _sys_write(self, proc, fd, buf, count, *_):
        return self.call(proc, "write", s32(fd), proc.cpu.read(buf, count))

    def _sys_close(self, proc, fd, *_):
        return self.call(proc, "close", s32(fd))

    def _pipe(self, proc, fds, flags):
        def ok(result: Done) -> int:
            for k, fd in enumerate(result.outs):
                proc.cpu.put(fds + self.int_size * k, fd, self.int_size)
            return 0
        if not proc.cpu.mapped(fds, 2 * self.int_size):
            return self.fail("EFAULT")
        return self.call(proc, "pipe2", flags, ok=ok)

    def _sys_pipe(self, proc, fds, *_):
        return self._pipe(proc, fds, Flags())

    def _sys_pipe2(self, proc, fds, flags, *_):
        return self._pipe(proc, fds, self.codec.flags(s32(flags), PIPE_FLAGS))

    def _sys_dup(self, proc, fd, *_):
        return self.call(proc, "dup", s32(fd))

    def _sys_dup2(self, proc, old, new, *_):
        return self.call(proc, "dup2", s32(old), s32(new))

    def _sys_dup3(self, proc, old, new, flags, *_):
        # dup3 is dup2 without its same-fd case, plus O_CLOEXEC (which the model's dup2 never
        # sets: a dup3 with O_CLOEXEC is answered as without it, and noted).
        cloexec = self.abi.flags["O_CLOEXEC"]
        if s32(old) == s32(new) or s32(flags) & ~cloexec:
            return self.fail("EINVAL")
        if flags & cloexec:
            self.machine.note(f"pid {proc.pid}: dup3 with O_CLOEXEC: FD_CLOEXEC not set")
        return self.call(proc, "dup2", s32(old), s32(new))

    def _sys_fcntl(self, proc, fd, cmd, *_):
        # Only F_GETFD, which the aarch64 lowering uses to ask whether an fd is open:
        # dup2(fd, fd) answers exactly that. FD_CLOEXEC has no number in the ABI tables, so an
        # open fd reports 0 flags.
        if s32(cmd) != self.abi.flags["F_GETFD"]:
            self.machine.note(f"pid {proc.pid}: fcntl command {s32(cmd)} is not modelled")
            return self.fail("ENOSYS")
        return self.call(proc, "dup2", s32(fd), s32(fd), ok=lambda _: 0)

    # -- processes ---------------------------------------------------------------------------

    def _sys_getpid(self, proc, *_):
        return self.call(proc, "getpid")

    def _sys_getppid(self, proc, *_):
        return self.call(proc, "getppid")

    def _sys_fork(self, proc, *_):
        return self.call(proc, "fork", ok=lambda r: self.machine.forked(proc, r.value))

    def _sys_clone(self, proc, flags, stack, *_):
        # fork() is clone(SIGCHLD, 0, ...): nothing shared, SIGCHLD on exit, same stack.
        if flags != self.abi.flags["CLONE_SIGCHLD"] or stack:
            self.machine.note(f"pid {proc.pid}: clone({flags:#x}, {stack:#x}) is not fork: "
                              "not modelled")
            return self.fail("ENOSYS")
        return self._sys_fork(proc)

    def _sys_wait4(self, proc, pid, status, options, _rusage, *_):
        flags = self.codec.flags(s32(options), WAIT_FLAGS)

        def ok(result: Done) -> int:
            if result.value > 0 and status:
                proc.cpu.put(status, self.codec.wait_status(result.outs[0]), self.int_size)
            return result.value
        if proc.pid == self.machine.driver and "WNOHANG" not in flags.names:
            # The model keeps the driver outside signals and time, so the driver never sleeps
            # in the model: it polls, and the machine parks it (and fires its watchdog).
            polled = Flags(flags.names + ("WNOHANG",), flags.bits)
            out = self.call(proc, "wait4", s32(pid), polled, ok=ok)
            return PARK if out == Return(0) else out
        return self.call(proc, "wait4", s32(pid), flags, ok=ok)

    def _sys_kill(self, proc, pid, sig, *_):
        signal = self.codec.signal(s32(sig))
        if signal is None:
            return self.fail("EINVAL")
        return self.call(proc, "kill", s32(pid), signal)

    def _sys_exit_group(self, proc, code, *_):
        if proc.pid == self.machine.driver:
            return self.machine.driver_exit(s32(code) & 0xFF)
        return self.call(proc, "exit", s32(code) & 0xFF)

    def _sys_setpgid(self, proc, pid, pgid, *_):
        return self.call(proc, "setpgid", s32(pid), s32(pgid))

    def _sys_getpgid(self, proc, pid, *_):
        return self.call(proc, "getpgid", s32(pid))

    def _sys_getpgrp(self, proc, *_):
        return self.call(proc, "getpgrp")

    def _sys_brk(self, proc, addr, *_):
        # The model keeps no memory: the break lives with the process's memory (its Cpu),
        # which fork copies. The raw call returns the break, new or unchanged.
        return Return(proc.cpu.set_break(addr))

    def _sys_sched_yield(self, proc, *_):
        self.machine.yielded = True
        return Return(0)

    def _sys_prctl(self, proc, option, arg, *_):
        # The model's driver already reaps every orphan: that is what the harness asks for.
        if proc.pid == self.machine.driver and \
                s32(option) == self.abi.flags["PR_SET_CHILD_SUBREAPER"]:
            return Return(0)
        self.machine.note(f"pid {proc.pid}: prctl({s32(option)}, {arg}) is not modelled")
        return self.fail("ENOSYS")

    def _sys_reboot(self, proc, magic1, magic2, cmd, *_):
        f = self.abi.flags
        # A restart ends the machine too: QEMU's -no-reboot makes it an exit.
        ends = (f["LINUX_REBOOT_CMD_POWER_OFF"], f["LINUX_REBOOT_CMD_RESTART"])
        magic = (s32(magic1) & 0xFFFF_FFFF, s32(magic2))
        if magic != (f["LINUX_REBOOT_MAGIC1"], f["LINUX_REBOOT_MAGIC2"]) \
                or s32(cmd) & 0xFFFF_FFFF not in ends:
            return self.fail("EINVAL")
        return HALT
