"""Run a test ELF on the reference machine under its source ABI and record every syscall.

A record holds what a porter needs to see and what the lifter needs to rebuild the call: the
number and the table's name for it, the raw argument registers (cut to the ABI's argument
width), the memory the call read (write buffers, struct arguments decoded with the source
ABI's layouts), the memory it wrote (read buffers, pipe fds, old actions and stacks, timer
values, revents, wait statuses), the result, the trap's address, and how many handler frames
were active (a call made inside a signal handler has depth > 0). A call that blocked is
recorded once, when it completes; calls are in completion order per process.
"""
from __future__ import annotations

from dataclasses import dataclass

from targets.runners.reference.outcomes import BLOCK, PARK, Return, s32
from targets.runners.reference.selectcall import fd_set_bytes, set_bits
from targets.runners.reference.standalone import (
    DEFAULT_LIMIT_S, Standalone, StandaloneResult, StandaloneSyscalls,
)
from targets.tables import Abi

_U64 = (1 << 64) - 1


@dataclass(frozen=True)
class Buffer:
    """Memory a call read or wrote: its role ("buf", "act", "oldact"...), where, the bytes,
    and, for a struct (or an array of them), its fields decoded with the ABI's layout."""

    role: str
    addr: int
    data: bytes
    layout: str | None = None
    fields: tuple = ()          # ((name, value), ...) per element (an fd_set: one per fd set)

    def field(self, name: str, index: int = 0) -> int:
        """One decoded field (of element `index`)."""
        return dict(self.fields[index])[name]


@dataclass(frozen=True)
class CallRecord:
    """One completed syscall (see the module docstring). `result` is the signed value the
    call returned (None if it did not return: exit, rt_sigreturn); `modelled` is False for a
    call the reference machine answered ENOSYS without knowing it."""

    seq: int
    pid: int
    depth: int
    pc: int
    nr: int
    name: str | None
    args: tuple[int, ...]
    inputs: tuple[Buffer, ...] = ()
    outputs: tuple[Buffer, ...] = ()
    result: int | None = None
    modelled: bool = True

    def input(self, role: str) -> Buffer | None:
        """The input buffer with that role, if the call read one."""
        return next((b for b in self.inputs if b.role == role), None)

    def output(self, role: str) -> Buffer | None:
        """The output buffer with that role, if the call wrote one."""
        return next((b for b in self.outputs if b.role == role), None)

    def errno(self, abi: Abi) -> str | None:
        """The error name if the call failed."""
        if self.result is not None and -abi.limits["errno_max"] <= self.result < 0:
            return abi.errno_name(-self.result) or f"errno {-self.result}"
        return None

    def describe(self, abi: Abi) -> str:
        """One line: `name(args) = result`."""
        args = ", ".join(_hex(a) for a in self.args[:_ARITY.get(self.name or "", 6)])
        if self.result is None:
            ret = "(does not return)"
        else:
            err = self.errno(abi)
            ret = f"= {self.result}" + (f" ({err})" if err else "")
        return f"{self.name or f'syscall {self.nr}'}({args}) {ret}"


@dataclass(frozen=True)
class Trace:
    """Every call of a run, the run's end, and the test's own pid in the model."""

    calls: tuple[CallRecord, ...]
    run: StandaloneResult
    program_pid: int
    abi: Abi
    frame_note: str = ""  # set when the ABI's handlers get another ABI's frames (Standalone)
    driver_pid: int = 1   # the virtual driver: the test's parent

    def of(self, pid: int) -> list[CallRecord]:
        """The calls of one process, in order."""
        return [c for c in self.calls if c.pid == pid]


_ARITY = {"read": 3, "write": 3, "close": 1, "pipe": 1, "pipe2": 2, "dup": 1, "dup2": 2,
          "dup3": 3, "getpid": 0, "getppid": 0, "fork": 0, "wait4": 4, "waitpid": 3, "kill": 2,
          "exit": 1, "exit_group": 1, "rt_sigaction": 4, "rt_sigprocmask": 4,
          "rt_sigpending": 2, "rt_sigsuspend": 2, "pause": 0, "sigaltstack": 2,
          "setitimer": 3, "getitimer": 2, "alarm": 1, "nanosleep": 2, "poll": 3, "ppoll": 5,
          "rt_sigreturn": 0, "sched_yield": 0, "getpgrp": 0, "getpgid": 1, "setpgid": 2,
          "clone": 5, "fcntl": 3, "prctl": 2, "select": 5, "brk": 1}


def _hex(value: int) -> str:
    return str(value) if value < 0x10000 else hex(value)


# What each call reads and writes: (role, argument index, shape). A shape is a layout name,
# "sigset", "int", "int2" (two ints), ("bytes", argument index of the count), "result"
# (as many bytes as the call returned), ("pollfd", argument index of the count) or ("fd_set",
# argument index of nfds: the whole longs that cover nfds bits, as select reads them).
_INPUTS = {
    "write": [("buf", 1, ("bytes", 2))],
    "rt_sigaction": [("act", 1, "sigaction")],
    "rt_sigprocmask": [("set", 1, "sigset")],
    "rt_sigsuspend": [("mask", 0, "sigset")],
    "sigaltstack": [("ss", 0, "stack_t")],
    "setitimer": [("new", 1, "itimerval")],
    "nanosleep": [("req", 0, "timespec")],
    "poll": [("fds", 0, ("pollfd", 1))],
    "ppoll": [("fds", 0, ("pollfd", 1)), ("timeout", 2, "timespec"), ("mask", 3, "sigset")],
    "select": [("readfds", 1, ("fd_set", 0)), ("writefds", 2, ("fd_set", 0)),
               ("exceptfds", 3, ("fd_set", 0)), ("timeout", 4, "timeval")],
}
_OUTPUTS = {
    "read": [("buf", 1, "result")],
    "pipe": [("fds", 0, "int2")],
    "pipe2": [("fds", 0, "int2")],
    "rt_sigaction": [("oldact", 2, "sigaction")],
    "rt_sigprocmask": [("old", 2, "sigset")],
    "rt_sigpending": [("set", 0, "sigset")],
    "sigaltstack": [("old", 1, "stack_t")],
    "setitimer": [("old", 2, "itimerval")],
    "getitimer": [("value", 1, "itimerval")],
    "wait4": [("status", 1, "int")],
    "waitpid": [("status", 1, "int")],
    "poll": [("fds", 0, ("pollfd", 1))],
    "ppoll": [("fds", 0, ("pollfd", 1))],
    "nanosleep": [("rem", 1, "timespec")],
    "select": [("readfds", 1, ("fd_set", 0)), ("writefds", 2, ("fd_set", 0)),
               ("exceptfds", 3, ("fd_set", 0)), ("timeout", 4, "timeval")],
}


class RecordingSyscalls(StandaloneSyscalls):
    """Every call of the test's processes (not the virtual driver's), as `CallRecord`s."""

    def __init__(self, machine, codec):
        super().__init__(machine, codec)
        self.records: list[CallRecord] = []
        self.pending: dict[int, tuple] = {}  # pid -> (pc, nr, args, inputs) of a blocked call

    def handle(self, proc, nr: int, args: list[int]):
        machine = self.machine
        if proc.pid == machine.driver:
            return super().handle(proc, nr, args)
        if self.abi.arg_bits < 64:
            nr &= self.arg_mask
            args = [a & self.arg_mask for a in args]
        pc = proc.cpu.get(machine.isa.pc) - machine.trap.length
        depth = proc.depth
        name = self.names.get(nr)
        started = self.pending.pop(proc.pid, None)
        if started is not None and started[:3] == (pc, nr, tuple(args)):
            inputs = started[3]
        else:
            inputs = self._buffers(proc, _INPUTS.get(name, ()), args, None)
        out = super().handle(proc, nr, args)
        if out in (BLOCK, PARK):
            self.pending[proc.pid] = (pc, nr, tuple(args), inputs)
            return out
        result = None
        outputs: tuple[Buffer, ...] = ()
        if isinstance(out, Return):
            result = out.value & _U64
            result -= (1 << 64) if result >> 63 else 0
            if result >= 0:
                outputs = self._buffers(proc, _OUTPUTS.get(name, ()), args, result)
        modelled = name is not None and hasattr(self, "_sys_" + name)
        self.records.append(CallRecord(len(self.records), proc.pid, depth, pc, nr, name,
                                       tuple(args), inputs, outputs, result, modelled))
        return out

    def _buffers(self, proc, specs, args, result) -> tuple[Buffer, ...]:
        found = []
        for role, index, shape in specs:
            addr = args[index]
            if not addr:
                continue
            try:
                found.append(self._read(proc, role, addr, shape, args, result))
            except MemoryError:
                continue  # the call itself answered EFAULT
        return tuple(found)

    def _read(self, proc, role, addr, shape, args, result) -> Buffer:
        cpu, layouts = proc.cpu, self.abi.layouts
        int_size = self.int_size
        if shape == "result":
            return Buffer(role, addr, cpu.read(addr, result))
        if isinstance(shape, tuple) and shape[0] == "bytes":
            return Buffer(role, addr, cpu.read(addr, args[shape[1]]))
        if shape == "sigset":
            data = cpu.read(addr, self.codec.sigset_bytes)
            return Buffer(role, addr, data, "sigset",
                          ((("bits", int.from_bytes(data, "little")),),))
        if shape in ("int", "int2"):
            count = 2 if shape == "int2" else 1
            data = cpu.read(addr, int_size * count)
            values = tuple((("value", int.from_bytes(data[k * int_size:(k + 1) * int_size],
                                                     "little", signed=True)),)
                           for k in range(count))
            return Buffer(role, addr, data, "int", values)
        if isinstance(shape, tuple) and shape[0] == "pollfd":
            count = args[shape[1]]
            lay = layouts["pollfd"]
            data = cpu.read(addr, lay.size * count)
            return Buffer(role, addr, data, "pollfd",
                          tuple(_decode(data[k * lay.size:(k + 1) * lay.size], lay)
                                for k in range(count)))
        if isinstance(shape, tuple) and shape[0] == "fd_set":
            nfds = max(s32(args[shape[1]]), 0)
            data = cpu.read(addr, fd_set_bytes(nfds, layouts["fd_set"].fields["word"][1]))
            fds = tuple(fd for fd in set_bits(data) if fd < nfds)  # select looks no further
            return Buffer(role, addr, data, "fd_set", tuple((("fd", fd),) for fd in fds))
        lay = layouts[shape]
        data = cpu.read(addr, lay.size)
        return Buffer(role, addr, data, shape, (_decode(data, lay),))


def _decode(data: bytes, layout) -> tuple:
    return tuple((name, int.from_bytes(data[off:off + size], "little",
                                       signed=name not in ("handler", "restorer", "sp")))
                 for name, (off, size) in layout.fields.items())


class Recorder(Standalone):
    """A standalone run whose syscalls are recorded."""

    syscalls_class = RecordingSyscalls


def record(elf: bytes, abi: Abi, *, limit_s: float = DEFAULT_LIMIT_S,
           timeout: float | None = None) -> Trace:
    """Run `elf` under `abi` on the reference machine and record every syscall."""
    machine = Recorder(elf, abi, limit_s=limit_s)
    run = machine.run_test(timeout)
    return Trace(tuple(machine.syscalls.records), run, machine.program, abi, machine.frame_note,
                 machine.driver)


__all__ = ["Buffer", "CallRecord", "Trace", "Recorder", "record"]
