"""Observable results in ISA-neutral form: what the oracle predicts and what traces normalise to.

Numbers that differ between ABIs never appear here: errors are `Errno("EBADF")`, pids are
`Pid(logical id)`, wait statuses are decoded with signal names. Both sides of a comparison are
built from these values, so comparing is plain equality.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

DRIVER = "driver"  # the batch driver: parent of every program's process 0, and its reaper


@dataclass(frozen=True)
class Errno:
    """A failed call: the symbolic error name (the ABI table gives its number)."""

    name: str

    def __str__(self) -> str:
        return f"-{self.name}"


@dataclass(frozen=True)
class Pid:
    """A process id, as the logical id of a program's process (or DRIVER)."""

    lpid: int | str

    def __str__(self) -> str:
        return "pid(driver)" if self.lpid == DRIVER else f"pid(p{self.lpid})"


@dataclass(frozen=True)
class UnknownPid:
    """A pid the trace could not map to any process of the program (a finding in itself)."""

    raw: int

    def __str__(self) -> str:
        return f"pid(unknown {self.raw})"


@dataclass(frozen=True)
class WaitStatus:
    """A decoded wait status. `core` None means either value is allowed (profile choice)."""

    how: str                 # "exited", "killed", "stopped", "continued", "none"
    value: int | str = 0     # exit code, or signal name
    core: bool | None = False

    def __str__(self) -> str:
        if self.how == "exited":
            return f"exited({self.value})"
        if self.how == "killed":
            core = {True: "+core", False: "", None: "(+core?)"}[self.core]
            return f"killed({self.value}{core})"
        if self.how in ("stopped",):
            return f"stopped({self.value})"
        return self.how

    def matches(self, other: "WaitStatus") -> bool:
        """Equality, where an unknown core flag on either side matches both values."""
        if (self.how, self.value) != (other.how, other.value):
            return False
        return self.core is None or other.core is None or self.core == other.core


@dataclass(frozen=True)
class Micros:
    """An observed duration (timer value, time left), in microseconds."""

    us: int

    def __str__(self) -> str:
        return f"{self.us}us"


@dataclass(frozen=True)
class TimeBound:
    """An expected duration: any value in [low, high] microseconds (checks are one-sided)."""

    low: int
    high: int

    def __str__(self) -> str:
        return f"{self.low}us" if self.low == self.high else f"{self.low}..{self.high}us"

    def matches(self, other: object) -> bool:
        """Whether an observed Micros lies within the bound."""
        return isinstance(other, Micros) and self.low <= other.us <= self.high


@dataclass(frozen=True)
class IntRange:
    """An expected integer within [low, high] (alarm's seconds left)."""

    low: int
    high: int

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}..{self.high}"

    def matches(self, other: object) -> bool:
        """Whether an observed int lies within the range."""
        return isinstance(other, int) and self.low <= other <= self.high


@dataclass(frozen=True)
class Names:
    """A set of named bits (flags, poll events, signals) plus bits the ABI has no name for."""

    names: tuple[str | int, ...] = ()
    unknown: int = 0

    def __str__(self) -> str:
        parts = [str(n) for n in self.names] + ([hex(self.unknown)] if self.unknown else [])
        return "|".join(parts) or "0"


@dataclass(frozen=True)
class AltStack:
    """An alternate-stack description as sigaltstack reports it.

    `base` is "region" (the harness's stack area), 0, or a raw address; `size` is symbolic
    when it is within 16 bytes of an ABI constant (StackSize), else an int.
    """

    base: str | int
    flags: Names
    size: object

    def __str__(self) -> str:
        from conformance.syntax import format_operand
        size = self.size if isinstance(self.size, int) else format_operand(self.size)
        return f"stack(base={self.base}, flags={self.flags}, size={size})"


@dataclass(frozen=True)
class Changed:
    """Registers a probe found changed across its call (names from the ABI table)."""

    regs: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "registers intact" if not self.regs else "changed: " + ", ".join(self.regs)


Value = Union[int, Errno, Pid, UnknownPid, WaitStatus, bytes, Micros, TimeBound, Names, AltStack,
              Changed, str]


@dataclass(frozen=True)
class Call:
    """The record of one operation: its index, its return value and its out-parameters."""

    op: int
    ret: Value
    outs: tuple[Value, ...] = ()
    data: bytes | None = None

    def matches(self, other: "Call") -> bool:
        """Field-wise equality with WaitStatus's core wildcard."""
        if (self.op, self.data) != (other.op, other.data) or not _value_matches(self.ret, other.ret):
            return False
        if len(self.outs) != len(other.outs):
            return False
        return all(_value_matches(a, b) for a, b in zip(self.outs, other.outs))


@dataclass(frozen=True)
class Exit:
    """The process reached exit(code) (or the end of its body: exit(0))."""

    code: int

    def matches(self, other: object) -> bool:
        """Plain equality."""
        return self == other


@dataclass(frozen=True)
class Handler:
    """The recording handler ran.

    `on_altstack`: its stack pointer lies in the harness's alternate-stack area; `aligned`: the
    stack pointer at entry follows the ABI's rule; `ss_flags`: what sigaltstack reports inside
    the handler; `change`: the result of re-installing the same alternate stack from inside
    (EPERM while running on it); `info`: (si_signo, si_code name, si_pid) with SA_SIGINFO.
    """

    signal: str | int
    depth: int
    on_altstack: bool
    aligned: bool
    ss_flags: Names
    change: Value
    info: tuple | None = None

    def matches(self, other: object) -> bool:
        """Plain equality."""
        return self == other


Event = Union[Call, Exit, Handler]


def _value_matches(a: Value, b: Value) -> bool:
    if isinstance(a, WaitStatus) and isinstance(b, WaitStatus):
        return a.matches(b)
    if isinstance(a, (TimeBound, IntRange)):
        return a.matches(b)
    return a == b


def event_matches(expected: Event, observed: Event) -> bool:
    """Whether an observed event is one the expectation allows."""
    return type(expected) is type(observed) and expected.matches(observed)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Outcome:
    """Everything observable about one run of a program.

    `procs` maps logical ids to their events in order; `reaped` lists (lpid, status) for every
    process the driver reaped (process 0 and orphans), sorted by lpid because the order in
    which a reaper collects unrelated processes is not defined; `hung` says the watchdog fired.
    """

    procs: tuple[tuple[int, tuple[Event, ...]], ...]
    reaped: tuple[tuple[int, WaitStatus], ...] = ()
    hung: bool = False

    def events(self, lpid: int) -> tuple[Event, ...]:
        """The events of one logical process (empty if it recorded nothing)."""
        return dict(self.procs).get(lpid, ())


@dataclass(frozen=True)
class Expected:
    """The oracle's verdict for a program: every outcome POSIX (and the profile) allows."""

    outcomes: tuple[Outcome, ...]
    notes: tuple[str, ...] = field(default=())
