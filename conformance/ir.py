"""The program IR: processes as ordered lists of abstract, ISA-neutral operations.

A Program is the body of logical process 0. A `fork` operation carries the body of the child
it creates. Operands are symbolic: fd handles and process names bound earlier in the same
process (or inherited at fork), constants by name (`SIGTERM`, `O_NONBLOCK`), literals.
Nothing here knows registers, syscall numbers or struct layouts: those live in ABI tables.

Every call is described once, in `CALLS`: parameter kinds, what it binds, what its result
means. The parser, the formatter, the validator, the lowering and the oracle all read it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Iterator, Union


class Param(Enum):
    """What kind of operand a parameter takes."""

    FD = "fd"          # a bound fd handle or an integer literal
    PROC = "proc"      # a bound process name, `self` or `parent`
    WAIT_PID = "wpid"  # a process name, or an integer literal (-1: any child)
    SIGNAL = "signal"  # a signal name (SIGTERM) or an integer literal
    FLAGS = "flags"    # NAME|NAME|... from the call's flag family, an int, or 0
    COUNT = "count"    # a non-negative integer
    DATA = "data"      # a string literal, or an integer N meaning N pattern bytes
    CODE = "code"      # an exit code 0..255
    TARGET = "target"  # kill's target: a process name, 0 (own group) or -name (that group)
    PGID_PROC = "pgproc"  # a process name or 0 (the caller), for setpgid/getpgid
    SIGSET = "sigset"  # SIG|SIG|... (realtime signals by number), or 0 for the empty set
    HANDLER = "handler"  # `handler` (the recording handler), SIG_IGN or SIG_DFL
    CHOICE = "choice"  # one name of the call's family (SIG_BLOCK, ITIMER_REAL...) or an int
    MILLIS = "millis"  # a duration in milliseconds, >= 0
    TIMEOUT = "timeout"  # milliseconds, or -1 for no timeout
    MASK = "mask"      # a signal set, or `none` (ppoll: keep the current mask)
    POLLFDS = "pollfds"  # [fd:EVENTS, ...]
    STACKSIZE = "stacksize"  # MINSIGSTKSZ, SIGSTKSZ, MINSIGSTKSZ-1, or a literal the ABIs agree on


class Ret(Enum):
    """How the value a call returns is to be read."""

    INT = "int"
    FD = "fd"
    PID = "pid"
    SECONDS = "seconds"  # whole seconds left on a timer (alarm)
    NONE = "none"      # the call does not return (exit)


@dataclass(frozen=True)
class CallSpec:
    """One abstract call: its parameters, the names it binds and the shape of its result."""

    name: str
    params: tuple[Param, ...] = ()
    flag_family: tuple[str, ...] = ()  # constant names valid for a FLAGS parameter
    binds: str = ""                    # "", "fd", "fd2" (two fds), "proc"
    bind_required: bool = False
    ret: Ret = Ret.INT
    outs: tuple[str, ...] = ()         # out-parameters recorded after the result
    has_body: bool = False
    records_data: bool = False         # the record carries the bytes the call produced
    choices: tuple[str, ...] = ()      # names valid for a CHOICE parameter
    blocking: bool = False             # may sleep: a handler can interrupt it (EINTR/restart)
    outs_when: str = "ok"              # outs are meaningful: "ok" (no error), "always",
                                       # "pid" (a pid was returned), "eintr" (interrupted)


WAIT_FLAGS = ("WNOHANG", "WUNTRACED", "WCONTINUED")
PIPE_FLAGS = ("O_NONBLOCK", "O_CLOEXEC")
SA_FLAGS = ("SA_NOCLDSTOP", "SA_SIGINFO", "SA_ONSTACK", "SA_RESTART", "SA_NODEFER",
            "SA_RESETHAND")
SS_FLAGS = ("SS_ONSTACK", "SS_DISABLE", "SS_AUTODISARM")
POLL_EVENTS = ("POLLIN", "POLLPRI", "POLLOUT", "POLLERR", "POLLHUP", "POLLNVAL")
MASK_HOWS = ("SIG_BLOCK", "SIG_UNBLOCK", "SIG_SETMASK")
TIMERS = ("ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF")
HANDLERS = ("handler", "SIG_IGN", "SIG_DFL")
STACK_SIZES = ("MINSIGSTKSZ", "SIGSTKSZ")

CALLS: dict[str, CallSpec] = {c.name: c for c in (
    CallSpec("pipe", binds="fd2", bind_required=True, outs=("fd", "fd"), outs_when="always"),
    CallSpec("pipe2", (Param.FLAGS,), PIPE_FLAGS, binds="fd2", bind_required=True,
             outs=("fd", "fd"), outs_when="always"),
    CallSpec("write", (Param.FD, Param.DATA)),
    CallSpec("read", (Param.FD, Param.COUNT), records_data=True),
    CallSpec("close", (Param.FD,)),
    CallSpec("dup", (Param.FD,), binds="fd", ret=Ret.FD),
    CallSpec("dup2", (Param.FD, Param.FD), binds="fd", ret=Ret.FD),
    CallSpec("getpid", ret=Ret.PID),
    CallSpec("getppid", ret=Ret.PID),
    CallSpec("fork", binds="proc", bind_required=True, ret=Ret.PID, has_body=True),
    CallSpec("waitpid", (Param.WAIT_PID, Param.FLAGS), WAIT_FLAGS, ret=Ret.PID,
             outs=("wstatus",), outs_when="pid"),
    CallSpec("wait4", (Param.WAIT_PID, Param.FLAGS), WAIT_FLAGS, ret=Ret.PID,
             outs=("wstatus",), outs_when="pid"),
    CallSpec("kill", (Param.TARGET, Param.SIGNAL)),
    CallSpec("exit", (Param.CODE,), ret=Ret.NONE),
    # signals
    CallSpec("sigaction", (Param.SIGNAL, Param.HANDLER, Param.FLAGS, Param.SIGSET), SA_FLAGS,
             outs=("handler", "saflags", "sigset")),
    CallSpec("sigprocmask", (Param.CHOICE, Param.SIGSET), choices=MASK_HOWS, outs=("sigset",)),
    CallSpec("sigpending", outs=("sigset",)),
    CallSpec("sigsuspend", (Param.SIGSET,), blocking=True),
    CallSpec("pause", blocking=True),
    CallSpec("sigaltstack", (Param.STACKSIZE, Param.FLAGS), SS_FLAGS, outs=("stack",)),
    CallSpec("spin", blocking=True),
    # process groups
    CallSpec("setpgid", (Param.PGID_PROC, Param.PGID_PROC)),
    CallSpec("getpgid", (Param.PGID_PROC,), ret=Ret.PID),
    CallSpec("getpgrp", ret=Ret.PID),
    # timers
    CallSpec("setitimer", (Param.CHOICE, Param.MILLIS, Param.MILLIS), choices=TIMERS,
             outs=("time", "time")),
    CallSpec("getitimer", (Param.CHOICE,), choices=TIMERS, outs=("time", "time")),
    CallSpec("alarm", (Param.COUNT,), ret=Ret.SECONDS),
    CallSpec("nanosleep", (Param.MILLIS,), blocking=True, outs=("timespec",), outs_when="eintr"),
    # poll
    CallSpec("poll", (Param.POLLFDS, Param.TIMEOUT), POLL_EVENTS, blocking=True,
             outs=("revents",)),
    CallSpec("ppoll", (Param.POLLFDS, Param.TIMEOUT, Param.MASK), POLL_EVENTS, blocking=True,
             outs=("revents",)),
)}
for _name in ("read", "write", "waitpid", "wait4"):
    CALLS[_name] = dataclasses.replace(CALLS[_name], blocking=True)

# Trailing parameters that may be left out, with the values they then take.
DEFAULT_TAIL: dict[str, tuple] = {}  # filled below, once Flags exists

SELF = "self"
PARENT = "parent"
RESERVED_NAMES = frozenset({SELF, PARENT})
# Records travel on fd 1; fds 0-2 belong to the harness and may not be named literally.
FIRST_PROGRAM_FD = 3


@dataclass(frozen=True)
class Ref:
    """A reference to a bound name (an fd handle or a process)."""

    name: str


@dataclass(frozen=True)
class Flags:
    """A set of named flag constants plus raw extra bits (for error paths)."""

    names: tuple[str, ...] = ()
    bits: int = 0


@dataclass(frozen=True)
class Group:
    """kill's target `-name`: the process group whose id is that process's pid."""

    name: str


@dataclass(frozen=True)
class SigSet:
    """A set of signals: standard ones by name, realtime ones by number (canonical order)."""

    signals: tuple[Union[str, int], ...] = ()


@dataclass(frozen=True)
class StackSize:
    """An alternate-stack size: an ABI constant plus an offset (MINSIGSTKSZ-1)."""

    name: str
    delta: int = 0


@dataclass(frozen=True)
class PollFd:
    """One entry of a poll list: an fd and the events asked for."""

    fd: Union["Ref", int]
    events: Flags


NO_MASK = "none"  # ppoll's mask operand when the current mask is kept (NULL sigmask)

Operand = Union[Ref, Flags, int, bytes, str, Group, SigSet, StackSize, tuple]

DEFAULT_TAIL.update({"waitpid": (Flags(),), "wait4": (Flags(),), "pipe2": (Flags(),),
                     "sigaction": (Flags(), SigSet()), "setitimer": (0,),
                     "sigaltstack": (None, Flags()), "ppoll": (NO_MASK,)})

# Signal names every supported OS knows; their numbers come from the ABI tables.
SIGNAL_NAMES = (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
    "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
    "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
    "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
)
MAX_TRANSFER = 1 << 17  # largest read count / write size a program may ask for


@dataclass(frozen=True)
class Op:
    """One operation of a process: a call, its operands, the names it binds, a child body."""

    call: str
    args: tuple[Operand, ...] = ()
    binds: tuple[str, ...] = ()
    body: tuple["Op", ...] | None = None
    probe: bool = False  # check that the call preserves every register the ABI says it must

    @property
    def spec(self) -> CallSpec:
        """The call's description in CALLS."""
        return CALLS[self.call]


@dataclass(frozen=True)
class Program:
    """A whole program: the body of logical process 0 and a free-text description."""

    body: tuple[Op, ...]
    doc: str = ""
    name: str = field(default="", compare=False)


@dataclass(frozen=True)
class Located:
    """An op with its index (pre-order over the whole program) and the process running it."""

    index: int
    lpid: int
    op: Op


def walk(program: Program) -> Iterator[Located]:
    """Every op in pre-order, with op indexes and logical process ids as the emitters use them.

    Process 0 is the program body; each fork op's child gets the next id in pre-order.
    """
    counter = {"op": 0, "proc": 0}

    def visit(body: tuple[Op, ...], lpid: int) -> Iterator[Located]:
        for op in body:
            index = counter["op"]
            counter["op"] += 1
            yield Located(index, lpid, op)
            if op.body is not None:
                counter["proc"] += 1
                yield from visit(op.body, counter["proc"])

    yield from visit(program.body, 0)


def op_count(program: Program) -> int:
    """Ops in the whole program, fork bodies included."""
    return sum(1 for _ in walk(program))


def child_lpids(program: Program) -> dict[int, int]:
    """Map each fork op's index to the logical id of the child it creates."""
    forks = [loc.index for loc in walk(program) if loc.op.body is not None]
    return {index: lpid for lpid, index in enumerate(forks, start=1)}


def process_count(program: Program) -> int:
    """How many logical processes the program can create (including process 0)."""
    return 1 + sum(1 for loc in walk(program) if loc.op.body is not None)


def ops_by_index(program: Program) -> dict[int, Located]:
    """Every located op keyed by its index."""
    return {loc.index: loc for loc in walk(program)}


# A read's record carries at most this many of the bytes it returned.
DATA_RECORD_LIMIT = 32


def pattern(size: int) -> bytes:
    """The bytes `write(fd, N)` sends: byte i is i % 251 (a prime, so pages do not repeat)."""
    return (_PERIOD * (size // 251 + 1))[:size]


_PERIOD = bytes(range(251))


def write_payload(data: bytes | int) -> bytes:
    """The bytes a write op sends: its string literal, or N pattern bytes."""
    return data if isinstance(data, bytes) else pattern(data)
