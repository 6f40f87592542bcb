"""Implementation-defined choices of the POSIX model, as named knobs of a profile.

POSIX leaves some behaviour to the implementation (pipe capacity, whether a core file was
written, ...). The oracle never assumes one silently: each such choice is a field here.
`LINUX` picks what Linux 6.x does; `POSIX` keeps POSIX's own minimums where it names them.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from conformance.ir import SIGNAL_NAMES

PIPE_MODELS = ("linux-pages", "bytes")
DELIVERY_ORDERS = ("linux", "any")
ITIMER_REAL_RESTARTS = ("dequeue", "expiry")
_MAY_BE_ZERO = ("cpu_timer_slack_us",)

# Linux takes the synchronous (fault) signals first, then the others by number; SIGNAL_NAMES
# is in Linux's numbering, which x86-64, aarch64 and riscv64 share.
_SYNCHRONOUS = ("SIGILL", "SIGTRAP", "SIGBUS", "SIGFPE", "SIGSEGV", "SIGSYS")
LINUX_SIGNAL_ORDER = _SYNCHRONOUS + tuple(s for s in SIGNAL_NAMES if s not in _SYNCHRONOUS)


@dataclass(frozen=True, kw_only=True)
class Profile:
    """A set of implementation-defined choices; every field is one named knob."""

    name: str
    """Short name, as the CLI and reports spell it."""

    pipe_model: str = "linux-pages"
    """How a pipe buffers data. "linux-pages": a ring of `pipe_buffers` pages of `page_size`
    bytes, where a write merges its first `n % page_size` bytes into the last page if they fit
    and puts the rest in fresh pages (Linux fs/pipe.c). "bytes": a plain `pipe_capacity`-byte
    buffer, writes of at most `pipe_buf` bytes atomic."""

    page_size: int = 4096
    """Bytes per pipe page (linux-pages model)."""

    pipe_buffers: int = 16
    """Pages in a pipe's ring (linux-pages model); Linux's default is 16."""

    pipe_capacity: int = 65536
    """Bytes a pipe holds (bytes model); for linux-pages it must equal pipe_buffers*page_size."""

    pipe_buf: int = 4096
    """PIPE_BUF: writes up to this size never interleave (bytes model: need all the space)."""

    open_max: int = 1024
    """RLIMIT_NOFILE: fds are 0..open_max-1; dup2 to a newfd >= open_max is EBADF."""

    core_flag: bool | None = None
    """The core-dump bit of a wait status for core-action signals; None allows either value.
    Linux sets None too: the host's core_pattern and RLIMIT_CORE decide."""

    max_signal: int = 64
    """Highest valid signal number; 32..max_signal are realtime signals (default action term)."""

    signal_order: tuple[str, ...] = LINUX_SIGNAL_ORDER
    """The order in which a process takes its pending standard signals (realtime ones follow,
    lowest number first). POSIX leaves it unspecified; both profiles use Linux's."""

    delivery_order: str = "linux"
    """Which pending signal a process takes first. "linux": dequeue_signal's rule, the thread's
    own queue (write's SIGPIPE) before the process's (kill, timers, SIGCHLD), each by
    `signal_order` (and frames set up in that order, so the last one set up runs first).
    "any": every unblocked pending standard signal of either queue is a candidate (realtime
    ones lowest first, as POSIX requires), and the predictor explores each choice."""

    resethand_clears_siginfo: bool = False
    """Whether SA_RESETHAND also clears SA_SIGINFO when it resets the action (POSIX says so;
    Linux keeps every flag and only resets the handler)."""

    cpu_timer_slack_us: int = 10_000
    """Added to the upper bound of an armed ITIMER_VIRTUAL/ITIMER_PROF value read back (µs).
    POSIX's one-sided rule (never more than was set) makes it 0. Linux's set_cpu_itimer adds
    one tick (TICK_NSEC) to every value it arms (its interval stays exact), and get_cpu_itimer
    reports an overdue timer as one tick left, so a read can exceed the set value by up to a
    tick: 4 ms at HZ=250 (observed: set 100 ms, read 104000 µs). TICK_NSEC is 1 s / CONFIG_HZ,
    and CONFIG_HZ is at least 100 on the ABIs the suite targets, so 10 ms covers every kernel
    configuration without knowing the host's HZ."""

    itimer_real_restart: str = "dequeue"
    """When a periodic ITIMER_REAL starts its next period. "dequeue" (Linux): it_real_fn
    returns HRTIMER_NORESTART, and dequeue_signal restarts the timer when it takes SIGALRM from
    the process's queue, at the next point of the original grid (hrtimer_forward); in between
    it reads 0 with its interval, and a SIGALRM ignored at generation (SIG_IGN, unblocked) or
    discarded while pending never restarts it. "expiry" (POSIX's text): it reloads as it
    expires, whatever becomes of the signal."""

    horizon_ms: int = 60_000
    """Virtual time after which the model stops advancing the clock (the program then hangs);
    it bounds programs that an interval timer would keep busy forever."""

    max_schedules: int = 24
    """Cap on the priority schedules the predictor explores (identity and reverse always)."""

    max_choice_runs: int = 64
    """Cap on the runs per schedule that explore the kernel's choices (delivery order "any",
    a core dump's si_code when `core_flag` is None)."""

    def __post_init__(self) -> None:
        if self.pipe_model not in PIPE_MODELS:
            raise ValueError(f"Profile.pipe_model={self.pipe_model!r}: expected one of "
                             f"{', '.join(PIPE_MODELS)}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and value < (0 if f.name in _MAY_BE_ZERO else 1):
                raise ValueError(f"Profile.{f.name}={value!r}: must be a positive integer")
        if self.itimer_real_restart not in ITIMER_REAL_RESTARTS:
            raise ValueError(f"Profile.itimer_real_restart={self.itimer_real_restart!r}: expected "
                             f"one of {', '.join(ITIMER_REAL_RESTARTS)}")
        if self.delivery_order not in DELIVERY_ORDERS:
            raise ValueError(f"Profile.delivery_order={self.delivery_order!r}: expected one of "
                             f"{', '.join(DELIVERY_ORDERS)}")
        if self.pipe_model == "linux-pages" and \
                self.pipe_capacity != self.pipe_buffers * self.page_size:
            raise ValueError(f"Profile.pipe_capacity={self.pipe_capacity}: the linux-pages model "
                             f"holds pipe_buffers*page_size = {self.pipe_buffers * self.page_size}")
        if self.max_signal < 32:
            raise ValueError(f"Profile.max_signal={self.max_signal}: realtime signals start at 32")
        if self.max_schedules < 2:
            raise ValueError(f"Profile.max_schedules={self.max_schedules}: need at least 2 "
                             "(identity and reverse order)")


LINUX = Profile(name="linux")
# POSIX names only minimums: _POSIX_PIPE_BUF is 512; capacity and page merging are unspecified,
# so the bytes model stands for "any buffer at least this big".
# POSIX leaves the order of pending standard signals open, and SA_RESETHAND clears SA_SIGINFO.
# Its timers read back no more than was set, and a periodic timer reloads when it expires.
POSIX = Profile(name="posix", pipe_model="bytes", pipe_buf=512, delivery_order="any",
                resethand_clears_siginfo=True, cpu_timer_slack_us=0,
                itimer_real_restart="expiry")
PROFILES: dict[str, Profile] = {p.name: p for p in (LINUX, POSIX)}
