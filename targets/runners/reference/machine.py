"""The reference machine: a batch ELF on unicorn, every syscall answered by the oracle's kernel.

One source of truth: `oracle.kernel.Kernel`, the model that predicts results, executes them.
Each process is a `Cpu` (its own unicorn and memory); the batch's first process is the model's
driver. Scheduling is deterministic and mirrors one of the predictor's schedules (a fixed
priority: program processes by pid, the driver last): a process keeps the CPU until it
writes to the console (the record that ends each op, so an op is atomic as the predictor
assumes), blocks, spins, stops or exits; then the highest-priority runnable process runs. When
none can run, the model's clock advances to its next event.

Protocol with the model (its module docstring): after every call and before a process resumes
user code, `deliver`; a call that BLOCKED is left with pc at its trap instruction, so the
process repeats it when it runs again (straight away, without delivering first, as a woken
call re-checks its condition), and a frame set up meanwhile saves that pc, so the call repeats
after the handler returns. A process that runs a whole time slice without a syscall is busy
waiting: it makes the model's "spin" call, which charges CPU time while the clock moves.

The model keeps its driver outside signals and time, so the batch driver's watchdog is the
machine's: its ITIMER_REAL is noted when armed, and when it is due (or nothing else can ever
happen) the parked driver's wait4 fails with EINTR, which is all its SIGALRM handler causes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from conformance.events import Errno
from oracle.kernel import Kernel
from oracle.profile import LINUX, Profile
from targets.runners.reference.codec import Codec
from targets.runners.reference.cpu import Cpu, Stop
from targets.runners.reference.delivery import Deliverer
from targets.runners.reference.isa import isa_for
from targets.runners.reference.outcomes import BLOCK, EXIT, HALT, PARK, RESTORED, Return
from targets.runners.reference.syscalls import Syscalls
from targets.tables import Abi

SLICE = 100_000             # instructions without a syscall after which a process is spinning
BUDGET = 400_000_000        # instructions spent spinning, over a whole run
MAX_CALLS = 2_000_000       # syscalls over a whole run
_DEAD = ("zombie", "reaped")


def _no_core_dumps(options: list):
    """The model's open choices: a signal's death is CLD_KILLED, never CLD_DUMPED, as with
    RLIMIT_CORE = 0 (the sandbox's limit); otherwise the model's first option."""
    return "CLD_KILLED" if "CLD_KILLED" in options else options[0]


@dataclass(eq=False)
class Proc:
    """A process as the machine sees it: its CPU and what the model does not keep."""

    pid: int
    cpu: Cpu
    actions: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # signo ->
    # (handler address, the SA_RESTORER bit as given, sa_restorer)
    repeat: bool = False      # pc is at a call that blocked: repeat it before delivering
    spin: bool = False        # in the model's "spin" call
    spin_depth: int = 0       # handler frames active when it started spinning
    depth: int = 0            # handler frames on its stack
    parked: bool = False      # the driver, waiting in wait4


@dataclass(frozen=True)
class Result:
    """What a run produced."""

    stdout: bytes
    stderr: bytes
    exit_code: int | None
    timed_out: bool
    incident: str
    notes: tuple[str, ...]
    calls: int
    slices: int


class Machine:
    """One batch run (see the module docstring)."""

    def __init__(self, elf: bytes, abi: Abi, profile: Profile = LINUX, slice_: int = SLICE,
                 sigreturn_skips: tuple[str, ...] = ()):
        self.abi, self.isa = abi, isa_for(abi.isa)
        for reg in sigreturn_skips:
            self.isa.reg(reg)  # KeyError naming the ISA for a register it does not have
        # A seeded bug for mutation tests only: rt_sigreturn leaves these registers as the
        # handler left them instead of restoring them from the frame.
        self.sigreturn_skips = tuple(sigreturn_skips)
        self.trap = self.isa.trap(abi.trap)
        self.codec = Codec(abi)
        self.kernel = Kernel(profile, chooser=_no_core_dumps)
        self.driver = self.kernel.spawn_driver()
        self.procs = {self.driver: Proc(self.driver, Cpu.load(elf, self.isa, self.trap))}
        self.syscalls = Syscalls(self, self.codec)
        self.signals = Deliverer(self)
        self.slice = slice_
        self.notes: list[str] = []
        self.current: Proc | None = None
        self.yielded = self.halted = False
        self.exit_code: int | None = None
        self.incident = ""          # why the run ended abnormally, when it did
        self.watchdog: int | None = None
        self.watchdog_interval = 0
        self.calls = self.slices = 0

    # -- the run -----------------------------------------------------------------------------

    def run(self, timeout: float, budget: int = BUDGET) -> Result:
        """Run until the driver ends, the batch can never progress, or a bound is hit."""
        deadline = time.monotonic() + timeout
        incident = ""
        while not self.halted:
            if time.monotonic() > deadline:
                incident = f"reference machine: wall-clock timeout after {timeout:.0f} s"
                break
            if self.slices * self.slice > budget or self.calls > MAX_CALLS:
                incident = (f"reference machine: budget exhausted ({self.calls} syscalls, "
                            f"{self.slices} spinning slices)")
                break
            proc = self._pick()
            if proc is not None:
                self._step(proc)
                continue
            if self.kernel.advance():
                continue
            driver = self.procs[self.driver]
            if driver.parked and self.watchdog is not None:
                self._fire(driver)  # nothing else will ever happen: the watchdog comes next
                continue
            incident = "reference machine: no process can ever run again (deadlock)"
            break
        incident = incident or self.incident
        out = {1: [], 2: []}
        for _, fd, data in self.kernel.console:
            out.get(fd, []).append(data)
        return Result(b"".join(out[1]), b"".join(out[2]), self.exit_code,
                      bool(incident) and not self.incident, incident, tuple(self.notes),
                      self.calls, self.slices)

    def note(self, text: str) -> None:
        """Remember something the machine could not model exactly (reported on stderr)."""
        if text not in self.notes and len(self.notes) < 100:
            self.notes.append(text)

    # -- scheduling --------------------------------------------------------------------------

    def _pick(self) -> Proc | None:
        cur = self.current
        if cur is not None and cur.pid in self.procs and self.kernel.runnable(cur.pid) \
                and not cur.parked:
            return cur
        self.current = None
        driver = self.procs[self.driver]
        if driver.parked and self.watchdog is not None and self.kernel.now >= self.watchdog:
            self._fire(driver)
            return driver
        for pid in sorted(self.procs):
            if pid != self.driver and self.kernel.runnable(pid):
                return self.procs[pid]
        if driver.parked:
            kids = self.kernel.children(self.driver)
            if kids and not any(self.kernel.state(c) == "zombie" for c in kids):
                return None
            driver.parked = False  # something to reap (or nothing left): repeat the wait4
        return driver

    def _step(self, proc: Proc) -> None:
        self.current = proc
        if self._enter(proc):
            stop = proc.cpu.run(self.slice)
            if stop.kind == "slice":
                self._spin(proc)
            elif stop.kind == "fault":
                self._fault(proc, stop)
            elif stop.kind == "interrupt":
                self.interrupted(proc, stop)
            else:
                self._trap(proc, stop)
        if not self.kernel.runnable(proc.pid):
            self.current = None
        for pid in [p for p in self.procs if p != self.driver]:
            if self.kernel.state(pid) in _DEAD:
                del self.procs[pid]  # its CPU and memory go; the model keeps the zombie

    def _enter(self, proc: Proc) -> bool:
        """Return to user mode before running `proc`; whether it runs."""
        if proc.repeat:
            proc.repeat = False
            return True
        if proc.spin and proc.depth == proc.spin_depth:
            # back from the handlers that interrupted the spin: repeat the call
            if self.syscalls.answer(self.kernel.syscall(proc.pid, "spin")) is BLOCK:
                if not self.kernel.runnable(proc.pid):
                    return False
            else:
                proc.spin = False
        self.signals.deliver(proc)
        return self.kernel.runnable(proc.pid)

    def interrupted(self, proc: Proc, stop: Stop) -> None:
        """A `Cpu.watch` callback stopped `proc` before the instruction at `stop.pc`; a
        subclass acts there (inject.py sends a signal), and then the process runs on."""

    def _fault(self, proc: Proc, stop: Stop) -> None:
        self.note(f"pid {proc.pid}: {stop.signal}: {stop.detail}")
        proc.cpu.set(self.isa.pc, stop.pc)  # a handler's frame saves the faulting pc
        if proc.pid == self.driver:
            # the model drops the driver's signals; like a namespace's init, its death ends all
            self.halted = True
            self.incident = f"the batch's driver died of {stop.signal} ({stop.detail})"
            return
        self.signals.force(proc, stop.signal)

    def _spin(self, proc: Proc) -> None:
        self.slices += 1
        if self.syscalls.answer(self.kernel.syscall(proc.pid, "spin")) is not BLOCK:
            return
        proc.spin, proc.spin_depth = True, proc.depth
        if self.kernel.runnable(proc.pid):
            self.signals.deliver(proc)  # interrupted at once

    # -- calls -------------------------------------------------------------------------------

    def _trap(self, proc: Proc, stop: Stop) -> None:
        self.calls += 1
        cpu, abi, pc = proc.cpu, self.abi, stop.pc
        after = pc + self.trap.length
        for reg, what in self.trap.clobbers.items():
            cpu.set(reg, after if what == "next_pc" else cpu.get(self.isa.flags))
        args = [cpu.get(r) for r in abi.arg_regs]
        cpu.set(self.isa.pc, after)  # where a completed call returns (and a forked child)
        console, self.yielded = len(self.kernel.console), False
        out = self.syscalls.handle(proc, cpu.get(abi.number_reg), args)
        if isinstance(out, Return):
            cpu.set(abi.result_reg, out.value)
            self.signals.deliver(proc)
        elif out is RESTORED:
            self.signals.deliver(proc)
        elif out in (BLOCK, PARK):
            cpu.set(self.isa.pc, pc)
            proc.parked = out is PARK
            if self.kernel.runnable(proc.pid) and not proc.parked:
                self.signals.deliver(proc)  # interrupted at once: the frame saves the trap's pc
            else:
                proc.repeat = True
                self.current = None
        elif out is HALT:
            self.halted = True
        if self.yielded or len(self.kernel.console) > console or out is EXIT:
            self.current = None

    def forked(self, parent: Proc, child: int) -> int:
        """fork succeeded in the model: the child gets a copy of the CPU, returning 0."""
        cpu = parent.cpu.fork()
        cpu.set(self.abi.result_reg, 0)
        self.procs[child] = Proc(child, cpu, dict(parent.actions))
        return child

    def sigreturn(self, proc: Proc):
        """rt_sigreturn (see `Deliverer.sigreturn`)."""
        self.signals.sigreturn(proc)
        return RESTORED

    def driver_exit(self, code: int):
        """The batch's first process exits: like a pid namespace's init, that ends the run."""
        self.exit_code = code
        return HALT

    # -- the driver's watchdog ---------------------------------------------------------------

    def arm_watchdog(self, value_us: int, interval_us: int) -> None:
        """The driver armed (or disarmed, with 0) its ITIMER_REAL."""
        self.watchdog = self.kernel.now + value_us if value_us else None
        self.watchdog_interval = interval_us

    def _fire(self, driver: Proc) -> None:
        """The watchdog's SIGALRM: its handler only returns, so wait4 fails with EINTR."""
        driver.parked = driver.repeat = False
        driver.cpu.set(self.abi.result_reg, self.codec.errno(Errno("EINTR")))
        driver.cpu.set(self.isa.pc, driver.cpu.get(self.isa.pc) + self.trap.length)
        due = max(self.watchdog, self.kernel.now)
        self.watchdog = due + self.watchdog_interval if self.watchdog_interval else None
