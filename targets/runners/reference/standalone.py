"""A standalone test ELF on the reference machine: the ELF is an ordinary process, not the driver.

`Machine` runs a batch ELF as the model's driver, which the model keeps outside signals and
time (the batch's harness must survive what its programs do). A test written by hand expects
the opposite: it signals itself, arms timers, and its exit status is its verdict. `Standalone`
therefore makes the driver virtual: `Kernel.spawn_driver()` as before, but the driver runs a
few instructions of its own (wait4(-1) until ECHILD, then exit_group) in a private address
space, and the ELF runs as its child (`Kernel.spawn`: own process group, the console as fds
0-2), as a shell would start it.

The run is bounded like a batch: the machine's watchdog (virtual time, `limit_s`) makes the
parked driver's wait4 fail with EINTR and the driver exits, which ends the run; so does the
moment nothing can ever happen again (the test blocks or spins forever). `StandaloneResult`
says whether the test exited, and how.

What an ABI table says about the trap that the batch machinery never needed is honoured here:
`syscall.arg_bits = 32` (only the low halves of the argument registers count, as for Linux's
i386 table entered with `int 0x80` from 64-bit code), registers the table lists as clobbered
that the trap instruction itself does not overwrite are zeroed on return (r8-r11 there), and
`exit` and `waitpid`, which old tests call and the batch never does, are answered.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from conformance.assemble import assemble
from conformance.events import WaitStatus
from oracle.profile import LINUX, Profile
from targets.runners.reference.codec import Codec
from targets.runners.reference.cpu import Cpu
from targets.runners.reference.frames import builder_for
from targets.runners.reference.machine import SLICE, Machine, Proc
from targets.runners.reference.syscalls import Syscalls
from targets.tables import Abi, AbiError, load

DRIVER_BASE = 0x1000_0000   # the virtual driver's own address space: code, status word, stack
DRIVER_SIZE = 0x10000
DEFAULT_LIMIT_S = 10.0


class StandaloneSyscalls(Syscalls):
    """`Syscalls` plus what a hand-written test needs (see the module docstring)."""

    def __init__(self, machine, codec: Codec):
        super().__init__(machine, codec)
        self.arg_mask = (1 << self.abi.arg_bits) - 1
        trap_clobbers = set(machine.trap.clobbers)
        self.zeroed = tuple(r for r in self.abi.clobbers if r not in trap_clobbers)

    def handle(self, proc, nr: int, args: list[int]):
        """Answer one raw call, with the ABI's argument width and return-time clobbers."""
        if self.abi.arg_bits < 64:
            nr &= self.arg_mask
            args = [a & self.arg_mask for a in args]
        out = super().handle(proc, nr, args)
        if proc.pid in self.machine.procs:
            for reg in self.zeroed:
                proc.cpu.set(reg, 0)
        return out

    def _sys_exit(self, proc, code, *_):
        # one thread per process: exit is exit_group
        return self._sys_exit_group(proc, code)

    def _sys_waitpid(self, proc, pid, status, options, *_):
        return self._sys_wait4(proc, pid, status, options, 0)


@dataclass(frozen=True)
class StandaloneResult:
    """How a standalone run ended. `status` is the test's wait status (None: it never ended);
    `watchdog` says why it did not (empty when it did)."""

    stdout: bytes
    stderr: bytes
    status: WaitStatus | None
    watchdog: str
    notes: tuple[str, ...]
    calls: int
    virtual_us: int

    @property
    def exit_code(self) -> int | None:
        """The exit code, if the test exited (not killed, not hung)."""
        return self.status.value if self.status is not None and self.status.how == "exited" \
            else None


def _frame_abi(abi: Abi, isa) -> tuple[Abi, str]:
    """An ABI whose layouts the ISA's frame builder accepts, and a note if it is not `abi`.

    A table with 32-bit structs (linux-i386) describes calls, not frames: Linux gives a
    handler installed through it an ia32 frame, which the reference machine does not build.
    Its frames are then those of the ISA's Linux table (`Standalone.frame_note` says so)."""
    try:
        builder_for(abi, isa)
        return abi, ""
    except ValueError:
        pass
    try:
        native = load(f"linux-{abi.isa}")
    except AbiError as exc:  # pragma: no cover - every ISA the machine runs has a Linux table
        raise ValueError(f"{abi.name}: no frame layout to fall back on ({exc})") from None
    layouts = dict(abi.layouts)
    layouts.update({k: native.layouts[k] for k in ("stack_t", "siginfo")})
    note = (f"{abi.name}: signal frames are built as {native.name}'s (Linux would build an "
            "ia32 frame and run the handler in 32-bit mode)")
    return dataclasses.replace(abi, layouts=layouts), note


class Standalone(Machine):
    """One standalone test run (see the module docstring)."""

    syscalls_class = StandaloneSyscalls

    def __init__(self, elf: bytes, abi: Abi, profile: Profile = LINUX, slice_: int = SLICE, *,
                 limit_s: float = DEFAULT_LIMIT_S):
        from targets.runners.reference.isa import isa_for
        frame_abi, self.frame_note = _frame_abi(abi, isa_for(abi.isa))
        super().__init__(elf, frame_abi, profile, slice_)
        # The frames keep `frame_abi`; every call is decoded with the table as it is.
        self.abi, self.codec = abi, Codec(abi)
        self.syscalls = self.syscalls_class(self, self.codec)
        test_cpu = self.procs[self.driver].cpu  # super() loaded the ELF for its driver
        self.program = self.kernel.spawn(self.driver)
        driver = Proc(self.driver, self._driver_cpu(), parked=True, repeat=True)
        self.procs = {self.driver: driver, self.program: Proc(self.program, test_cpu)}
        self.limit_s = limit_s
        self.arm_watchdog(int(limit_s * 1_000_000), 0)

    def _driver_cpu(self) -> Cpu:
        """The virtual driver: parked at its wait4 trap, as if it had just made the call."""
        import ctypes
        abi, isa = self.abi, self.isa
        a = abi.arg_regs
        status = DRIVER_BASE + 0x800
        setup = [f"mov {abi.number_reg}, {abi.nr('wait4')}", f"mov {a[0]}, -1",
                 f"mov {a[1]}, {status}", f"mov {a[2]}, 0", f"mov {a[3]}, 0"]
        tail = [abi.trap, f"cmp {abi.result_reg}, 0", "jg wait_again",
                f"mov {abi.number_reg}, {abi.nr('exit_group')}", f"mov {a[0]}, 0", abi.trap,
                "stuck:", "jmp stuck"]
        head = assemble("\n".join(setup), abi, DRIVER_BASE)
        code = assemble("\n".join(["wait_again:"] + setup + tail), abi, DRIVER_BASE)
        region = ctypes.create_string_buffer(DRIVER_SIZE)
        ctypes.memmove(region, code, len(code))
        cpu = Cpu(isa, self.trap, [(DRIVER_BASE, region)])
        for name, value in isa.initial.items():
            cpu.set(name, value)
        cpu.set(isa.sp, DRIVER_BASE + DRIVER_SIZE - 64)
        cpu.set(abi.number_reg, abi.nr("wait4"))
        for reg, value in zip(a, (-1, status, 0, 0)):
            cpu.set(reg, value)
        cpu.set(isa.pc, DRIVER_BASE + len(head))  # at the trap
        return cpu

    def run_test(self, timeout: float | None = None) -> StandaloneResult:
        """Run the test to its end or a bound; `timeout` bounds wall-clock time (default: a
        few times the virtual limit)."""
        wall = timeout if timeout is not None else max(30.0, 3 * self.limit_s)
        result = self.run(wall)
        state = self.kernel.state(self.program)
        status = self.kernel.status(self.program) if state in ("zombie", "reaped") else None
        watchdog = ""
        if status is None:
            why = result.incident or {
                "blocked": "it waits in a call that nothing will complete",
                "spinning": "it loops without making a call, and no timer will interrupt it",
                "stopped": "it is stopped and nothing will continue it",
            }.get(state, f"it is {state}")
            if self.kernel.now >= self.limit_s * 1_000_000:
                why = f"{self.limit_s:g} s of virtual time passed"
            watchdog = f"watchdog: the test did not exit within {self.limit_s:g} s ({why})"
        return StandaloneResult(result.stdout, result.stderr, status, watchdog, result.notes,
                                result.calls, self.kernel.now)


def run_standalone(elf: bytes, abi: Abi, *, limit_s: float = DEFAULT_LIMIT_S,
                   timeout: float | None = None) -> StandaloneResult:
    """Run a standalone test ELF speaking `abi` and report how it ended."""
    return Standalone(elf, abi, limit_s=limit_s).run_test(timeout)


__all__ = ["Standalone", "StandaloneResult", "StandaloneSyscalls", "run_standalone"]
