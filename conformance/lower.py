"""ISA-neutral lowering: Programs -> micro-ops over syscalls, memory words and labels.

Each ISA emitter only translates these micro-ops (and supplies its runtime routines), so the
knowledge of what a call means lives here once. Which syscall realises an abstract call is
decided by what the ABI table has (pipe or pipe2, fork or clone, dup2 or dup3 + a check),
never by the ISA's name.

All mutable state lives at fixed addresses in the image's zero-filled tail (`Memory`), so
every process has private copies after fork and emitters need no data labels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Union

from conformance.ir import (
    CALLS, NO_MASK, PARENT, SELF, Flags, Group, Op, Program, Ref, SigSet,
    StackSize, child_lpids, walk, write_payload,
)
from targets.tables import Abi

DRIVER_LPID = 0xFF  # the lpid field of the batch driver's own records


# --- values -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Imm:
    """An immediate 64-bit value."""

    value: int


@dataclass(frozen=True)
class Var:
    """A memory word at a fixed address; size 4 is loaded sign-extended."""

    addr: int
    size: int = 8


@dataclass(frozen=True)
class CodeAddr:
    """The address of a code label (handlers, restorers)."""

    label: str


@dataclass(frozen=True)
class Neg:
    """The negation of a value (process-group ids for kill)."""

    value: "Value"


@dataclass(frozen=True)
class Add:
    """A value plus a constant (alarm's rounding)."""

    value: "Value"
    constant: int


Value = Union[Imm, Var, CodeAddr, Neg, Add]


# --- micro-ops ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Label:
    """A jump target."""

    name: str


@dataclass(frozen=True)
class Jump:
    """Unconditional jump."""

    label: str


@dataclass(frozen=True)
class Branch:
    """Jump to label if `a <cond> b` (signed 64-bit); cond is eq ne lt le gt ge."""

    cond: str
    a: Value
    b: Value
    label: str


@dataclass(frozen=True)
class Syscall:
    """Trap into the kernel; the raw result is stored in Memory.RET.

    With `probe`, every register of the ABI's probe list is filled with a distinct pattern
    (argument registers keep their arguments) and compared after the call; the bitmasks of
    changed registers land in Memory.PROBE_GPR / PROBE_SIMD.
    """

    nr: int
    args: tuple[Value, ...]
    name: str = ""
    probe: bool = False


@dataclass(frozen=True)
class Move:
    """dst = src."""

    dst: Var
    src: Value


@dataclass(frozen=True)
class Record:
    """Write one observation record: kind letter, u64 fields, optional bytes (addr, length)."""

    kind: str
    fields: tuple[Value, ...]
    data: tuple[Value, Value] | None = None


@dataclass(frozen=True)
class Comment:
    """A line of explanation in the listing."""

    text: str


MicroOp = Union[Label, Jump, Branch, Syscall, Move, Record, Comment]


# --- memory map ---------------------------------------------------------------------------

class Memory:
    """Fixed addresses in the zero-filled tail of the image (see conformance.elf).

    The runtime routines of each emitter use these same addresses.
    """

    BASE = 0x800000
    CUR_PROG = BASE + 0x00
    CUR_LPID = BASE + 0x08
    CUR_SEQ = BASE + 0x10
    RET = BASE + 0x18
    PIPEFDS = BASE + 0x20      # int[2]
    WSTATUS = BASE + 0x28      # int
    P0PID = BASE + 0x30
    HUNG = BASE + 0x38
    SIGACTION = BASE + 0x40    # struct sigaction scratch (32 bytes)
    ZERO = BASE + 0x60         # 64 bytes that stay zero: SIG_DFL action, disarmed timer
    WATCHDOG = BASE + 0xA0     # struct itimerval for the driver's watchdog (32 bytes)
    DEPTH = BASE + 0xC0        # handler invocations active in this process
    HCOUNT = BASE + 0xC8       # handler invocations so far (spin() waits for it to change)
    SPIN0 = BASE + 0xD0
    PROBE_GPR = BASE + 0xD8    # bitmask: probe registers found changed (ABI table order)
    PROBE_SIMD = BASE + 0xE0
    H_PLAIN = BASE + 0xE8      # addresses of the recording handlers, set by the driver
    H_INFO = BASE + 0xF0
    H_RESTORER = BASE + 0xF8
    SIGNO = BASE + 0x1000 - 8  # the driver's loop counter (last word before OLDACT)
    SLOTS = BASE + 0x100       # one word per bound name
    MAX_SLOTS = 480
    OLDACT = BASE + 0x1000     # struct sigaction (old)
    SIGSET = BASE + 0x1020
    OLDSET = BASE + 0x1028
    NEWSS = BASE + 0x1030      # stack_t
    OLDSS = BASE + 0x1048
    NEWITV = BASE + 0x1060     # struct itimerval
    OLDITV = BASE + 0x1080
    TS = BASE + 0x10A0         # struct timespec
    REM = BASE + 0x10B0
    PPMASK = BASE + 0x10C0
    POLLARR = BASE + 0x1100    # struct pollfd[MAX_POLL]
    MAX_POLL = 16
    LANE_PID = BASE + 0x1180   # pid of the driver lane running the current program
    RECFIELDS = BASE + 0x1200  # u64[MAX_RECFIELDS]: a record's fields, for rt_rec
    MAX_RECFIELDS = 32
    READBUF = BASE + 0x2000
    ALTSTACK = BASE + 0x30000  # the alternate signal stack area
    ALTSTACK_SIZE = 0x10000
    END = ALTSTACK + ALTSTACK_SIZE

    @classmethod
    def slot(cls, index: int) -> Var:
        """The word holding bound name number `index`."""
        if index >= cls.MAX_SLOTS:
            raise ValueError(f"program binds more than {cls.MAX_SLOTS} names")
        return Var(cls.SLOTS + 8 * index)


RET = Var(Memory.RET)


# --- lowering -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Faults:
    """Deliberate changes to the emitted code: bugs that prove the checks catch them
    (mutation tests), and timing perturbation for telling flaky results apart."""

    drop_sa_onstack: bool = False       # sigaction never asks for the alternate stack
    corrupt_saved_register: str = ""    # handlers overwrite this register's saved copy
    yield_between_ops: bool = False     # sched_yield() before every op (shakes the schedule)
    # Run-level faults, to show that a broken run loses no other program's result:
    die_after: str = ""                 # the batch ends after the program of this name (a VM's
                                        # init exits: a real kernel panic)
    never_end: bool = False             # the batch never ends (a VM never powers off)
    console_garbage: bool = False       # noise and damaged records before every program
    # A kernel bug, only the reference machine can have it (its kernel is ours):
    sigreturn_skips: str = ""           # rt_sigreturn leaves this register as the handler left it


NO_FAULTS = Faults()

@dataclass
class Rodata:
    """Read-only bytes placed before the code; offsets are relative to its start."""

    base: int
    blob: bytearray = field(default_factory=bytearray)
    _interned: dict[bytes, int] = field(default_factory=dict)

    def add(self, data: bytes) -> int:
        """The address of `data` in the image (identical payloads are shared)."""
        if data not in self._interned:
            self._interned[data] = self.base + len(self.blob)
            self.blob += data
            self.blob += bytes(-len(self.blob) % 8)
        return self._interned[data]


class _ProgramLowering:
    def __init__(self, program: Program, index: int, abi: Abi, rodata: Rodata,
                 faults: Faults = NO_FAULTS):
        self.program, self.index, self.abi, self.rodata = program, index, abi, rodata
        self.faults = faults
        self.slots: dict[str, int] = {SELF: 0, PARENT: 1}
        self.children = child_lpids(program)
        self.op_index = {id(loc.op): loc.index for loc in walk(program)}
        self.out: list[MicroOp] = []
        self.deferred: list[tuple[int, int, Op]] = []  # (child lpid, fork op index, fork op)
        self.serial = 0

    def label(self, what: str) -> str:
        self.serial += 1
        return f"p{self.index}_{what}_{self.serial}"

    def slot(self, name: str) -> Var:
        return Memory.slot(self.slots.setdefault(name, len(self.slots)))

    def emit(self, *ops: MicroOp) -> None:
        self.out.extend(ops)

    def syscall(self, name: str, *args: Value) -> None:
        self.emit(Syscall(self.abi.nr(name), tuple(args), name, self.probing))

    probing = False
    spin_next = False      # the op being lowered is followed by a spin()
    spin_counted = False   # the handler count the spin() next waits on has been taken

    # operands
    def fd(self, operand) -> Value:
        return self.slot(operand.name) if isinstance(operand, Ref) else Imm(operand)

    def flags(self, operand: Flags) -> Imm:
        value = operand.bits
        for name in operand.names:
            value |= self.abi.const(name)
        return Imm(value)

    def signal(self, operand) -> Imm:
        return Imm(self.abi.const(operand) if isinstance(operand, str) else operand)

    def sigmask(self, operand: SigSet) -> int:
        bits = 0
        for sig in operand.signals:
            bits |= 1 << ((self.abi.const(sig) if isinstance(sig, str) else sig) - 1)
        return bits

    def proc(self, operand) -> Value:
        """A process operand: a name's pid, 0, or -pid for a group."""
        if isinstance(operand, Group):
            return Neg(self.slot(operand.name))
        if isinstance(operand, Ref):
            return self.slot(operand.name)
        return Imm(operand)

    def choice(self, operand) -> Imm:
        return Imm(self.abi.const(operand) if isinstance(operand, str) else operand)

    # entry points
    def lower(self) -> list[MicroOp]:
        self.emit(Label(entry_label(self.index)),
                  Comment(f"program {self.index}: process 0"),
                  Move(Var(Memory.CUR_LPID), Imm(0)), Move(Var(Memory.CUR_SEQ), Imm(0)),
                  Syscall(self.abi.nr("setpgid"), (Imm(0), Imm(0)), "setpgid"),
                  Comment("the driver's watchdog handler must not leak into the program"),
                  Syscall(self.abi.nr("rt_sigaction"),
                          (Imm(self.abi.const("SIGALRM")), Imm(Memory.ZERO), Imm(0),
                           Imm(self.abi.limits["sigset_bytes"])), "rt_sigaction"))
        self.syscall("getpid")
        self.emit(Move(self.slot(SELF), RET))
        self.body(self.program.body)
        while self.deferred:
            lpid, fork_index, op = self.deferred.pop(0)
            self.emit(Label(child_label(self.index, lpid)),
                      Comment(f"program {self.index}: process {lpid}, child of op {fork_index}"),
                      Move(Var(Memory.CUR_LPID), Imm(lpid)), Move(Var(Memory.CUR_SEQ), Imm(0)),
                      Move(self.slot(PARENT), self.slot(SELF)))
            self.syscall("getpid")
            self.emit(Move(self.slot(SELF), RET),
                      Record("R", (Imm(fork_index), Imm(0))))
            self.body(op.body or ())
        return self.out

    def body(self, ops) -> None:
        ops = tuple(ops)
        for op, after in zip(ops, ops[1:] + (None,)):
            self.spin_next = after is not None and after.call == "spin"
            self.op(op)
        self.exit(Imm(0))

    def exit(self, code: Value) -> None:
        self.emit(Record("E", (code,)))
        self.syscall("exit_group", code)

    def op(self, op: Op) -> None:
        index = self.op_index[id(op)]
        from conformance.syntax import format_op
        self.emit(Comment(f"op {index}: {format_op(op)[0].strip()}"))
        if self.faults.yield_between_ops:
            self.emit(Syscall(self.abi.nr("sched_yield"), (), "sched_yield"))
        self.probing = op.probe
        try:
            getattr(self, "op_" + op.call)(op, index)
        finally:
            self.probing = False

    def result(self, index: int, *outs: Value, data=None) -> None:
        if self.spin_next and not self.spin_counted:
            # A spin() next waits for a handler that runs from here on: one that runs while
            # this record is written, or before the spin begins (a stalled host, a yield),
            # still ends it, as it would have had the spin already begun.
            self.emit(Move(Var(Memory.SPIN0), Var(Memory.HCOUNT)))
            self.spin_counted = True
        if self.probing:
            outs += (Var(Memory.PROBE_GPR), Var(Memory.PROBE_SIMD))
        self.emit(Record("R", (Imm(index), RET) + outs, data))

    def bind(self, op: Op, value: Value) -> None:
        for name in op.binds:
            self.emit(Move(self.slot(name), value))

    # calls
    def op_pipe(self, op: Op, index: int, flags: Value | None = None) -> None:
        fds = Var(Memory.PIPEFDS)
        self.emit(Move(fds, Imm(-1)))  # both ints read -1 if the call fails
        if flags is None and self.abi.has("pipe"):
            self.syscall("pipe", Imm(Memory.PIPEFDS))
        else:
            self.syscall("pipe2", Imm(Memory.PIPEFDS), flags or Imm(0))
        read_end, write_end = Var(Memory.PIPEFDS, 4), Var(Memory.PIPEFDS + 4, 4)
        self.emit(Move(self.slot(op.binds[0]), read_end), Move(self.slot(op.binds[1]), write_end))
        self.result(index, read_end, write_end)

    def op_pipe2(self, op: Op, index: int) -> None:
        self.op_pipe(op, index, self.flags(op.args[0]))

    def op_write(self, op: Op, index: int) -> None:
        payload = write_payload(op.args[1])
        self.syscall("write", self.fd(op.args[0]), Imm(self.rodata.add(payload)), Imm(len(payload)))
        self.result(index)

    def op_read(self, op: Op, index: int) -> None:
        self.syscall("read", self.fd(op.args[0]), Imm(Memory.READBUF), Imm(op.args[1]))
        self.result(index, data=(Imm(Memory.READBUF), RET))

    def op_close(self, op: Op, index: int) -> None:
        self.syscall("close", self.fd(op.args[0]))
        self.result(index)

    def op_dup(self, op: Op, index: int) -> None:
        self.syscall("dup", self.fd(op.args[0]))
        self.bind(op, RET)
        self.result(index)

    def op_dup2(self, op: Op, index: int) -> None:
        old, new = self.fd(op.args[0]), self.fd(op.args[1])
        if self.abi.has("dup2"):
            self.syscall("dup2", old, new)
        else:
            # dup3(fd, fd) is EINVAL where dup2(fd, fd) returns fd if it is open: check by hand.
            differ, done = self.label("dup3"), self.label("dup2_done")
            self.emit(Branch("ne", old, new, differ))
            self.syscall("fcntl", old, Imm(self.abi.const("F_GETFD")))
            self.emit(Branch("lt", RET, Imm(0), done), Move(RET, old), Jump(done), Label(differ))
            self.syscall("dup3", old, new, Imm(0))
            self.emit(Label(done))
        self.bind(op, RET)
        self.result(index)

    def op_getpid(self, op: Op, index: int) -> None:
        self.syscall("getpid")
        self.result(index)

    def op_getppid(self, op: Op, index: int) -> None:
        self.syscall("getppid")
        self.result(index)

    def op_fork(self, op: Op, index: int) -> None:
        lpid = self.children[index]
        self.emit_fork()
        self.emit(Branch("eq", RET, Imm(0), child_label(self.index, lpid)))
        self.bind(op, RET)
        self.emit(Record("F", (Imm(index), RET, Imm(lpid))))
        self.deferred.append((lpid, index, op))

    def emit_fork(self) -> None:
        emit_fork(self.abi, self.out)

    def op_waitpid(self, op: Op, index: int) -> None:
        target = op.args[0]
        pid = self.slot(target.name) if isinstance(target, Ref) else Imm(target)
        self.emit(Move(Var(Memory.WSTATUS), Imm(0)))
        self.syscall("wait4", pid, Imm(Memory.WSTATUS), self.flags(op.args[1]), Imm(0))
        self.result(index, Var(Memory.WSTATUS, 4))

    op_wait4 = op_waitpid

    def op_kill(self, op: Op, index: int) -> None:
        self.syscall("kill", self.proc(op.args[0]), self.signal(op.args[1]))
        self.result(index)

    # signals
    def op_sigaction(self, op: Op, index: int) -> None:
        sig, handler, flags, mask = op.args
        sa = self.abi.layouts["sigaction"]
        new = Memory.SIGACTION
        bits = self.flags(flags).value | self.abi.const("SA_RESTORER")
        if self.faults.drop_sa_onstack:
            bits &= ~self.abi.const("SA_ONSTACK")
        if handler == "handler":
            info = "SA_SIGINFO" in flags.names
            target: Value = Var(Memory.H_INFO if info else Memory.H_PLAIN)
        else:
            target = Imm(self.abi.const(handler))
        self.emit(Move(Var(new + sa.offset("handler")), target),
                  Move(Var(new + sa.offset("flags")), Imm(bits)),
                  Move(Var(new + sa.offset("restorer")), Var(Memory.H_RESTORER)),
                  Move(Var(new + sa.offset("mask")), Imm(self.sigmask(mask))))
        for name in ("handler", "flags", "restorer", "mask"):
            self.emit(Move(Var(Memory.OLDACT + sa.offset(name)), Imm(0)))
        self.syscall("rt_sigaction", self.signal(sig), Imm(new), Imm(Memory.OLDACT), self.setsize())
        self.result(index, Var(Memory.OLDACT + sa.offset("handler")),
                    Var(Memory.OLDACT + sa.offset("flags")), Var(Memory.OLDACT + sa.offset("mask")))

    def setsize(self) -> Imm:
        return Imm(self.abi.limits["sigset_bytes"])

    def op_sigprocmask(self, op: Op, index: int) -> None:
        self.emit(Move(Var(Memory.SIGSET), Imm(self.sigmask(op.args[1]))),
                  Move(Var(Memory.OLDSET), Imm(0)))
        self.syscall("rt_sigprocmask", self.choice(op.args[0]), Imm(Memory.SIGSET),
                     Imm(Memory.OLDSET), self.setsize())
        self.result(index, Var(Memory.OLDSET))

    def op_sigpending(self, op: Op, index: int) -> None:
        self.emit(Move(Var(Memory.OLDSET), Imm(0)))
        self.syscall("rt_sigpending", Imm(Memory.OLDSET), self.setsize())
        self.result(index, Var(Memory.OLDSET))

    def op_sigsuspend(self, op: Op, index: int) -> None:
        self.emit(Move(Var(Memory.SIGSET), Imm(self.sigmask(op.args[0]))))
        self.syscall("rt_sigsuspend", Imm(Memory.SIGSET), self.setsize())
        self.result(index)

    def op_pause(self, op: Op, index: int) -> None:
        if self.abi.has("pause"):
            self.syscall("pause")
        else:  # no timeout, no fds, no mask change: sleeps until a signal
            self.syscall("ppoll", Imm(0), Imm(0), Imm(0), Imm(0), Imm(0))
        self.result(index)

    def op_spin(self, op: Op, index: int) -> None:
        loop, done = self.label("spin"), self.label("spun")
        if not self.spin_counted:  # no op before it in this body took the count
            self.emit(Move(Var(Memory.SPIN0), Var(Memory.HCOUNT)))
        self.spin_counted = False
        self.emit(Label(loop),
                  Branch("ne", Var(Memory.HCOUNT), Var(Memory.SPIN0), done), Jump(loop),
                  Label(done), Move(RET, Imm(0)))
        self.result(index)

    def op_sigaltstack(self, op: Op, index: int) -> None:
        size, flags = op.args
        st = self.abi.layouts["stack_t"]
        for name in ("sp", "ss_size"):
            self.emit(Move(Var(Memory.OLDSS + st.offset(name)), Imm(0)))
        self.emit(Move(Var(Memory.OLDSS + st.offset("flags"), 4), Imm(0)))
        new: Value = Imm(0)
        if size is not None:
            if isinstance(size, StackSize):
                size = self.abi.limits[size.name] + size.delta
            self.emit(Move(Var(Memory.NEWSS + st.offset("sp")), Imm(Memory.ALTSTACK)),
                      Move(Var(Memory.NEWSS + st.offset("flags"), 4), self.flags(flags)),
                      Move(Var(Memory.NEWSS + st.offset("ss_size")), Imm(size)))
            new = Imm(Memory.NEWSS)
        self.syscall("sigaltstack", new, Imm(Memory.OLDSS))
        self.result(index, Var(Memory.OLDSS + st.offset("sp")),
                    Var(Memory.OLDSS + st.offset("flags"), 4),
                    Var(Memory.OLDSS + st.offset("ss_size")))

    # process groups
    def op_setpgid(self, op: Op, index: int) -> None:
        self.syscall("setpgid", self.proc(op.args[0]), self.proc(op.args[1]))
        self.result(index)

    def op_getpgid(self, op: Op, index: int) -> None:
        self.syscall("getpgid", self.proc(op.args[0]))
        self.result(index)

    def op_getpgrp(self, op: Op, index: int) -> None:
        if self.abi.has("getpgrp"):
            self.syscall("getpgrp")
        else:
            self.syscall("getpgid", Imm(0))
        self.result(index)

    # timers
    def itimer_outs(self) -> tuple[Value, ...]:
        itv = self.abi.layouts["itimerval"]
        return tuple(Var(Memory.OLDITV + itv.offset(f)) for f in
                     ("value_sec", "value_usec", "interval_sec", "interval_usec"))

    def set_itimer(self, which: Imm, value_us: int, interval_us: int) -> None:
        itv = self.abi.layouts["itimerval"]
        values = {"value_sec": value_us // 1_000_000, "value_usec": value_us % 1_000_000,
                  "interval_sec": interval_us // 1_000_000, "interval_usec": interval_us % 1_000_000}
        for name, value in values.items():
            self.emit(Move(Var(Memory.NEWITV + itv.offset(name)), Imm(value)),
                      Move(Var(Memory.OLDITV + itv.offset(name)), Imm(0)))
        self.syscall("setitimer", which, Imm(Memory.NEWITV), Imm(Memory.OLDITV))

    def op_setitimer(self, op: Op, index: int) -> None:
        which, value, interval = op.args
        self.set_itimer(self.choice(which), value * 1000, interval * 1000)
        self.result(index, *self.itimer_outs())

    def op_getitimer(self, op: Op, index: int) -> None:
        itv = self.abi.layouts["itimerval"]
        for name in ("value_sec", "value_usec", "interval_sec", "interval_usec"):
            self.emit(Move(Var(Memory.OLDITV + itv.offset(name)), Imm(0)))
        self.syscall("getitimer", self.choice(op.args[0]), Imm(Memory.OLDITV))
        self.result(index, *self.itimer_outs())

    def op_alarm(self, op: Op, index: int) -> None:
        if self.abi.has("alarm"):
            self.syscall("alarm", Imm(op.args[0]))
            self.result(index)
            return
        # setitimer(ITIMER_REAL), then the old value in seconds as the kernel's alarm rounds it
        self.set_itimer(Imm(self.abi.const("ITIMER_REAL")), op.args[0] * 1_000_000, 0)
        itv = self.abi.layouts["itimerval"]
        sec, usec = Var(Memory.OLDITV + itv.offset("value_sec")), Var(Memory.OLDITV + itv.offset("value_usec"))
        up, done = self.label("alarm_up"), self.label("alarm_done")
        self.emit(Move(RET, sec), Branch("ge", usec, Imm(500_000), up),
                  Branch("ne", sec, Imm(0), done), Branch("le", usec, Imm(0), done),
                  Label(up), Move(RET, Add(RET, 1)), Label(done))
        self.result(index)

    def op_nanosleep(self, op: Op, index: int) -> None:
        ts = self.abi.layouts["timespec"]
        ms = op.args[0]
        self.emit(Move(Var(Memory.TS + ts.offset("sec")), Imm(ms // 1000)),
                  Move(Var(Memory.TS + ts.offset("nsec")), Imm(ms % 1000 * 1_000_000)),
                  Move(Var(Memory.REM + ts.offset("sec")), Imm(0)),
                  Move(Var(Memory.REM + ts.offset("nsec")), Imm(0)))
        self.syscall("nanosleep", Imm(Memory.TS), Imm(Memory.REM))
        self.result(index, Var(Memory.REM + ts.offset("sec")), Var(Memory.REM + ts.offset("nsec")))

    # poll
    def pollfds(self, entries) -> None:
        if len(entries) > Memory.MAX_POLL:
            raise ValueError(f"poll lists hold at most {Memory.MAX_POLL} entries")
        pfd = self.abi.layouts["pollfd"]
        for k, entry in enumerate(entries):
            at = Memory.POLLARR + k * pfd.size
            # events and revents share one 32-bit word: events low, revents (0) high
            self.emit(Move(Var(at + pfd.offset("fd"), 4), self.fd(entry.fd)),
                      Move(Var(at + pfd.offset("events"), 4), self.flags(entry.events)))

    def poll_outs(self, entries) -> tuple[Value, ...]:
        pfd = self.abi.layouts["pollfd"]
        return tuple(Var(Memory.POLLARR + k * pfd.size + pfd.offset("revents"), 2)
                     for k in range(len(entries)))

    def timeout(self, ms: int) -> Value:
        """A timespec for ppoll, or NULL for no timeout."""
        if ms < 0:
            return Imm(0)
        ts = self.abi.layouts["timespec"]
        self.emit(Move(Var(Memory.TS + ts.offset("sec")), Imm(ms // 1000)),
                  Move(Var(Memory.TS + ts.offset("nsec")), Imm(ms % 1000 * 1_000_000)))
        return Imm(Memory.TS)

    def op_poll(self, op: Op, index: int) -> None:
        entries, ms = op.args
        self.pollfds(entries)
        if self.abi.has("poll"):
            self.syscall("poll", Imm(Memory.POLLARR), Imm(len(entries)), Imm(ms))
        else:
            self.syscall("ppoll", Imm(Memory.POLLARR), Imm(len(entries)), self.timeout(ms),
                         Imm(0), self.setsize())
        self.result(index, *self.poll_outs(entries))

    def op_ppoll(self, op: Op, index: int) -> None:
        entries, ms, mask = op.args
        self.pollfds(entries)
        sigmask: Value = Imm(0)
        if mask != NO_MASK:
            self.emit(Move(Var(Memory.PPMASK), Imm(self.sigmask(mask))))
            sigmask = Imm(Memory.PPMASK)
        self.syscall("ppoll", Imm(Memory.POLLARR), Imm(len(entries)), self.timeout(ms), sigmask,
                     self.setsize())
        self.result(index, *self.poll_outs(entries))

    def op_exit(self, op: Op, index: int) -> None:
        self.exit(Imm(op.args[0]))


def emit_fork(abi: Abi, out: list[MicroOp]) -> None:
    """fork(), or clone(SIGCHLD, 0, 0, 0, 0) where the ABI has no fork."""
    if abi.has("fork"):
        out.append(Syscall(abi.nr("fork"), (), "fork"))
    else:
        out.append(Syscall(abi.nr("clone"), (Imm(abi.const("CLONE_SIGCHLD")), Imm(0), Imm(0),
                                             Imm(0), Imm(0)), "clone"))


def entry_label(program_index: int) -> str:
    """The label where program `program_index`'s process 0 starts."""
    return f"prog{program_index}"


def child_label(program_index: int, lpid: int) -> str:
    """The label where a forked child starts."""
    return f"prog{program_index}_proc{lpid}"


def lower_program(program: Program, index: int, abi: Abi, rodata: Rodata,
                  faults: Faults = NO_FAULTS) -> list[MicroOp]:
    """The micro-ops of one program (process 0's entry, then each child's body)."""
    missing = [loc.op.call for loc in walk(program) if loc.op.call not in CALLS]
    if missing:
        raise ValueError(f"unknown calls {missing}")
    return _ProgramLowering(program, index, abi, rodata, faults).lower()


ENDINGS = ("exit", "poweroff", "restart")
# How pid 1 ends a VM: reboot(2)'s command. QEMU's -no-reboot turns a restart into an exit,
# for machines that cannot power off (an x86 PC booted with acpi=off).
_REBOOT_COMMANDS = {"poweroff": "LINUX_REBOOT_CMD_POWER_OFF",
                    "restart": "LINUX_REBOOT_CMD_RESTART"}


GARBAGE = (b"\x00\xff\xfe garbage \x1b[2J @@cf: @@cf:zz.1:0:R::0000 "
           b"@@cf:fff.0:0:R:1:ffff\n@@cf:fff.0:1:R:2\n\x7fELF\r\n")


def lower_driver(count: int, abi: Abi, watchdog_ms: int, ending: str = "exit",
                 faults: Faults = NO_FAULTS, die_after: int | None = None,
                 rodata: Rodata | None = None,
                 lanes: Sequence[Sequence[int]] | None = None) -> list[MicroOp]:
    """The batch driver: runs programs 0..count-1, each under a watchdog, in lanes.

    `lanes` lists the program indexes of each lane (default: one lane, all in order); a lane
    runs its programs one after another: it forks each
    program's process 0 into its own process group and, as a child subreaper (so orphans come
    back to it), reaps every process of the program, recording each status, until none is
    left. If the watchdog expires it records a hang and SIGKILLs the group. With one lane the
    driver is the lane; with more, the driver forks them and reaps them, so that programs
    that mostly wait on timers overlap (each lane is a separate process: its own watchdog
    timer, its own pid for the program's `getppid`, recorded with each program's start).
    `ending` "poweroff" is for a batch that boots as a VM's /init: pid 1 forks the driver,
    reaps until nothing is left and powers the VM off (the kernel panics if init exits);
    "restart" is the same with a restart instead of a power-off. The
    driver must not be init itself: the kernel treats the process group of a child of the
    global init as orphaned, and would discard the job-control stops that programs test.
    `faults` may end a lane after program `die_after`, never end the run, or print garbage
    (which needs `rodata`).
    """
    if ending not in ENDINGS:
        raise ValueError(f"unknown batch ending {ending!r} (known: {', '.join(ENDINGS)})")
    lanes = [list(lane) for lane in (lanes or [range(count)]) if lane]
    if sorted(i for lane in lanes for i in lane) != list(range(count)):
        raise ValueError(f"lanes {lanes} do not list each of the {count} programs once")
    nr, const = abi.nr, abi.const
    sa = abi.layouts["sigaction"]
    itv = abi.layouts["itimerval"]
    sec, usec = divmod(watchdog_ms * 1000, 1_000_000)
    out: list[MicroOp] = [Label("_start")]
    if ending in _REBOOT_COMMANDS:
        out += _init_then_reboot(abi, _REBOOT_COMMANDS[ending], die=die_after is not None,
                                 hang=faults.never_end)
    subreaper = Syscall(nr("prctl"), (Imm(const("PR_SET_CHILD_SUBREAPER")), Imm(1), Imm(0),
                                      Imm(0), Imm(0)), "prctl")
    out += [
        Move(Var(Memory.CUR_LPID), Imm(DRIVER_LPID)),
        Comment("handler addresses: sigaction loads them from here, the trace learns them"),
        Move(Var(Memory.H_PLAIN), CodeAddr("rt_handler_plain")),
        Move(Var(Memory.H_INFO), CodeAddr("rt_handler_info")),
        Move(Var(Memory.H_RESTORER), CodeAddr("rt_restorer")),
        Syscall(nr("getpid"), (), "getpid"),
        Move(Var(Memory.LANE_PID), RET),
        Record("I", (RET, Var(Memory.H_PLAIN), Var(Memory.H_INFO))),
        Comment("dispositions and mask as a fresh process has them, whatever launched us:"),
        Comment("nohup and '&' leave SIGHUP/SIGINT/SIGQUIT ignored, and that survives exec"),
        Move(Var(Memory.SIGNO), Imm(1)),
        Label("drv_reset_signal"),
        Syscall(nr("rt_sigaction"), (Var(Memory.SIGNO), Imm(Memory.ZERO), Imm(0),
                                     Imm(abi.limits["sigset_bytes"])), "rt_sigaction"),
        Move(Var(Memory.SIGNO), Add(Var(Memory.SIGNO), 1)),
        Branch("le", Var(Memory.SIGNO), Imm(64), "drv_reset_signal"),
        Syscall(nr("rt_sigprocmask"), (Imm(const("SIG_SETMASK")), Imm(Memory.ZERO), Imm(0),
                                       Imm(abi.limits["sigset_bytes"])), "rt_sigprocmask"),
        Comment("orphans of a program are reparented to the driver, which reaps them"),
        subreaper,
        Comment("watchdog: SIGALRM interrupts wait4 (no SA_RESTART)"),
        Move(Var(Memory.SIGACTION + sa.offset("handler")), CodeAddr("rt_nop_handler")),
        Move(Var(Memory.SIGACTION + sa.offset("flags")), Imm(const("SA_RESTORER"))),
        Move(Var(Memory.SIGACTION + sa.offset("restorer")), CodeAddr("rt_restorer")),
        Syscall(nr("rt_sigaction"), (Imm(const("SIGALRM")), Imm(Memory.SIGACTION), Imm(0),
                                     Imm(abi.limits["sigset_bytes"])), "rt_sigaction"),
    ]
    for fieldname, value in (("interval_sec", sec), ("interval_usec", usec),
                             ("value_sec", sec), ("value_usec", usec)):
        out.append(Move(Var(Memory.WATCHDOG + itv.offset(fieldname)), Imm(value)))
    if len(lanes) == 1:
        return out + _lane(lanes[0], abi, faults, die_after, rodata) + _watch(abi, count)
    for k in range(len(lanes)):
        emit_fork(abi, out)
        out.append(Branch("eq", RET, Imm(0), f"lane{k}"))
    out += [Comment("the driver only reaps its lanes (and whatever a dead lane left behind)"),
            Label("drv_reap"),
            Syscall(nr("wait4"), (Imm(-1), Imm(0), Imm(0), Imm(0)), "wait4"),
            Branch("ne", RET, Imm(-const("ECHILD")), "drv_reap"),
            Syscall(nr("exit_group"), (Imm(0),), "exit_group")]
    for k, lane in enumerate(lanes):
        out += [Label(f"lane{k}"), Comment(f"lane {k}: a subreaper of its own (not inherited)"),
                subreaper, Syscall(nr("getpid"), (), "getpid"), Move(Var(Memory.LANE_PID), RET)]
        out += _lane(lane, abi, faults, die_after, rodata)
    return out + _watch(abi, count)


def _lane(indexes: Sequence[int], abi: Abi, faults: Faults, die_after: int | None,
          rodata: Rodata | None) -> list[MicroOp]:
    """One lane of the driver: programs `indexes` one after another, then exit.

    Each program's part is short: it forks the program and jumps to the watch (`_watch`),
    which comes back to the part's end; so the driver's code grows little with the batch."""
    nr = abi.nr
    out: list[MicroOp] = []
    for i in indexes:
        out += [Comment(f"program {i}"), Move(Var(Memory.CUR_PROG), Imm(i))]
        if faults.console_garbage and rodata is not None:
            out.append(Syscall(nr("write"), (Imm(1), Imm(rodata.add(GARBAGE)), Imm(len(GARBAGE))),
                               "write"))
        emit_fork(abi, out)
        out += [Branch("eq", RET, Imm(0), entry_label(i)), Jump("drv_watch"),
                Label(_watched(i))]
        if i == die_after:
            out.append(Syscall(nr("exit_group"), (Imm(0),), "exit_group"))
    out.append(Syscall(nr("exit_group"), (Imm(0),), "exit_group"))
    return out


def _watched(index: int) -> str:
    """Where the driver goes on once program `index` has ended."""
    return f"drv{index}_next"


def _watch(abi: Abi, count: int) -> list[MicroOp]:
    """The driver's watch over the program it just forked (fork's result in RET): record the
    start, put the program in its own process group, reap every process of it under the
    watchdog, record the end, then go back to the lane, at the end of the program's part.

    The way back compares Memory.CUR_PROG with each index: a jump to a computed address would
    cost less, but the C and Rust reproducers translate these micro-ops, and Rust has none."""
    nr, const = abi.nr, abi.const
    p0 = Var(Memory.P0PID)
    wait, intr, done = "drv_wait", "drv_intr", "drv_done"
    return [
        Comment("the watch over one program, shared by every lane and program"),
        Label("drv_watch"),
        Move(p0, RET),
        Move(Var(Memory.HUNG), Imm(0)),
        Record("G", (RET, Var(Memory.LANE_PID))),
        Branch("lt", p0, Imm(0), done),
        Syscall(nr("setpgid"), (p0, p0), "setpgid"),
        Syscall(nr("setitimer"), (Imm(const("ITIMER_REAL")), Imm(Memory.WATCHDOG), Imm(0)),
                "setitimer"),
        Label(wait),
        Move(Var(Memory.WSTATUS), Imm(0)),
        Syscall(nr("wait4"), (Imm(-1), Imm(Memory.WSTATUS), Imm(0), Imm(0)), "wait4"),
        Branch("eq", RET, Imm(-const("ECHILD")), done),
        Branch("eq", RET, Imm(-const("EINTR")), intr),
        Record("Z", (RET, Var(Memory.WSTATUS, 4))),
        Branch("lt", RET, Imm(0), done),
        Jump(wait),
        Label(intr),
        Comment("a second expiry means SIGKILL did not help: give up on the stragglers"),
        Branch("ne", Var(Memory.HUNG), Imm(0), done),
        Move(Var(Memory.HUNG), Imm(1)),
        Record("H", ()),
        Syscall(nr("kill"), (Neg(p0), Imm(const("SIGKILL"))), "kill"),
        Jump(wait),
        Label(done),
        Syscall(nr("setitimer"), (Imm(const("ITIMER_REAL")), Imm(Memory.ZERO), Imm(0)),
                "setitimer"),
        Record("N", ()),
    ] + [Branch("eq", Var(Memory.CUR_PROG), Imm(i), _watched(i)) for i in range(count)] + [
        Syscall(nr("exit_group"), (Imm(0),), "exit_group")]


def _init_then_reboot(abi: Abi, command: str, die: bool = False,
                      hang: bool = False) -> list[MicroOp]:
    """pid 1's part: fork the driver, reap every process until none is left, then reboot(2)
    with `command` (the ABI constant that powers off or restarts).

    Faults: `die` makes init exit instead (the kernel panics), `hang` makes it wait forever.
    """
    nr, const = abi.nr, abi.const
    out: list[MicroOp] = []
    emit_fork(abi, out)
    out += [
        Branch("eq", RET, Imm(0), "drv_start"),
        Label("init_reap"),
        Syscall(nr("wait4"), (Imm(-1), Imm(0), Imm(0), Imm(0)), "wait4"),
        Branch("ne", RET, Imm(-const("ECHILD")), "init_reap"),
    ]
    if hang:
        out += [Label("init_hang"),
                Syscall(nr("rt_sigsuspend"), (Imm(Memory.ZERO), Imm(abi.limits["sigset_bytes"])),
                        "rt_sigsuspend"),
                Jump("init_hang")]
    if not die:
        out.append(Syscall(nr("reboot"), (Imm(const("LINUX_REBOOT_MAGIC1")),
                                          Imm(const("LINUX_REBOOT_MAGIC2")),
                                          Imm(const(command)), Imm(0)),
                           "reboot"))
    return out + [Syscall(nr("exit_group"), (Imm(0),), "exit_group"), Label("drv_start")]
