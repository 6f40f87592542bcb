"""The kernel model's records: call results, processes, signal frames, alternate stacks, timers.

They are plain data; `oracle.kernel.Kernel` and its mixins (delivery, timers, polling) change
them. Process states: runnable, blocked (asleep in a call), spinning (busy in user mode, waiting
for a handler: it uses CPU time but cannot make progress), stopped, zombie, reaped.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from conformance.events import Errno, WaitStatus
from oracle.pipes import Pipe
from oracle.signals import Signal, SigInfo

RUNNABLE, BLOCKED_STATE, SPINNING, STOPPED = "runnable", "blocked", "spinning", "stopped"
ZOMBIE, REAPED = "zombie", "reaped"
LIVE_STATES = (RUNNABLE, BLOCKED_STATE, SPINNING, STOPPED)
REGION = "region"  # the base of the harness's alternate-stack area


@dataclass(frozen=True)
class Done:
    """A completed call: its value (int or Errno), out-values, and the bytes a read returned."""

    value: int | Errno
    outs: tuple = ()
    data: bytes | None = None


@dataclass(frozen=True)
class Blocked:
    """The call has not completed: repeat it with the same arguments once runnable again."""


@dataclass(frozen=True)
class Gone:
    """The call never returns: the process exited."""


BLOCKED, GONE = Blocked(), Gone()
EINTR = Done(Errno("EINTR"))


class OpenFile:
    """An open file description (a pipe end or the harness console), shared by dup and fork."""

    def __init__(self, kind: str, pipe: Pipe | None = None, nonblock: bool = False):
        self.kind = kind          # "read", "write" or "console"
        self.pipe = pipe
        self.nonblock = nonblock
        self.refs = 0             # fd slots pointing here, across all processes


@dataclass(frozen=True)
class Stack:
    """Alternate-stack settings as sigaltstack takes and reports them.

    `base` is REGION or 0, `size` an int or a `conformance.ir.StackSize`, `flags` SS_* names
    (`bits`: raw extra flag bits a program passed)."""

    base: str | int = 0
    size: object = 0
    flags: frozenset = frozenset({"SS_DISABLE"})
    bits: int = 0

    @property
    def enabled(self) -> bool:
        """Whether a stack is installed (Linux: sas_ss_size != 0)."""
        return self.base != 0


DISABLED = Stack()


@dataclass(frozen=True)
class Interruption:
    """A blocking call cut short by a signal, and how it ends if a handler runs.

    `kind` is Linux's restart code: "sys" (ERESTARTSYS: SA_RESTART restarts it), "nohand"
    (ERESTARTNOHAND) and "block" (ERESTART_RESTARTBLOCK) end with `result` when a handler runs,
    "spin" ends with 0. Without a handler every kind restarts."""

    call: str
    kind: str
    result: Done


@dataclass(eq=False)
class Frame:
    """One handler invocation set up on the user stack: what a machine pushes and runs.

    Frames are set up in order and the last one set up runs first. `restore_mask` and
    `saved_stack` are what rt_sigreturn puts back; `started` turns true once its handler runs."""

    signal: Signal
    info: SigInfo
    flags: tuple[str, ...]
    on_altstack: bool
    restore_mask: frozenset
    saved_stack: Stack
    started: bool = False


@dataclass
class ITimer:
    """An interval timer: absolute expiry on its clock in µs (0: disarmed), its reload, and
    whether it has reloaded since it was set.

    `idle`: a periodic ITIMER_REAL that has expired and waits, not running, until its SIGALRM
    is taken (Linux restarts it in dequeue_signal); `expires` then keeps the expiry it had, the
    origin of the grid it restarts on."""

    expires: int = 0
    interval: int = 0
    reloaded: bool = False
    idle: bool = False


@dataclass(eq=False)
class Process:
    """One process as the kernel sees it."""

    pid: int
    ppid: int
    pgid: int
    fds: dict[int, OpenFile] = field(default_factory=dict)
    cloexec: set[int] = field(default_factory=set)
    state: str = RUNNABLE
    status: WaitStatus | None = None       # set when it dies
    # Pending signals, in arrival order: the thread's own queue (Linux task->pending: write's
    # SIGPIPE) and the process's (signal->shared_pending: kill, timers, SIGCHLD).
    pending: list[tuple[Signal, SigInfo]] = field(default_factory=list)
    shared_pending: list[tuple[Signal, SigInfo]] = field(default_factory=list)
    doomed: Signal | None = None           # a fatal signal already decided (Linux group exit)
    children: list[int] = field(default_factory=list)  # in the order Linux's wait scans them
    wchan: object = None                   # what a blocked process waits on
    stop_report: Signal | None = None      # a stop its parent has not collected (WUNTRACED)
    cont_report: bool = False              # a continue its parent has not collected
    cont_notify: bool = False              # CLD_CONTINUED still to send (when it next runs)
    write_done: int | None = None          # progress of a pipe write that blocked
    # signals
    actions: dict = field(default_factory=dict)       # Signal -> Action, default ones left out
    blocked: frozenset = frozenset()
    saved_mask: frozenset | None = None    # the mask sigsuspend/ppoll replaced (restored later)
    altstack: Stack = DISABLED
    frames: list[Frame] = field(default_factory=list)
    interruption: Interruption | None = None
    resume: tuple[str, Done] | None = None  # (call, result) an interrupted call returns
    # time
    deadline: int | None = None            # when a sleeping or polling call times out (µs)
    timers: dict[str, ITimer] = field(default_factory=dict)
    cpu: int = 0                           # CPU time used (µs): only spinning counts

    def queued(self) -> list[tuple[Signal, SigInfo]]:
        """Every pending signal, the thread's queue first."""
        return self.pending + self.shared_pending
