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


Value = Union[int, Errno, Pid, UnknownPid, WaitStatus, bytes]


@dataclass(frozen=True)
class Call:
    """The record of one operation: its index, its return value and its out-parameters."""

    op: int
    ret: Value
    outs: tuple[Value, ...] = ()
    data: bytes | None = None

    def matches(self, other: "Call") -> bool:
        """Field-wise equality with WaitStatus's core wildcard."""
        if (self.op, self.ret, self.data) != (other.op, other.ret, other.data):
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


Event = Union[Call, Exit]


def _value_matches(a: Value, b: Value) -> bool:
    if isinstance(a, WaitStatus) and isinstance(b, WaitStatus):
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
