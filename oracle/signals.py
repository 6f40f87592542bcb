"""Signal names, default actions, dispositions and sets: the data the kernel model's signal code
reads.

A signal is a name from `conformance.ir.SIGNAL_NAMES` or an int: 0 (existence check) or a
realtime signal number 32..profile.max_signal. Standard signals are never ints here, because
their numbers differ between ABIs; the ABI table translates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from conformance.ir import SIGNAL_NAMES

Signal = Union[str, int]

TERM = "term"
CORE = "core"
IGNORE = "ignore"
STOP = "stop"
CONTINUE = "continue"

_ACTIONS: dict[str, str] = {}
for _names, _action in (
    ("SIGHUP SIGINT SIGKILL SIGUSR1 SIGUSR2 SIGPIPE SIGALRM SIGTERM SIGSTKFLT SIGVTALRM "
     "SIGPROF SIGIO SIGPWR", TERM),
    ("SIGQUIT SIGILL SIGTRAP SIGABRT SIGBUS SIGFPE SIGSEGV SIGXCPU SIGXFSZ SIGSYS", CORE),
    ("SIGCHLD SIGURG SIGWINCH", IGNORE),
    ("SIGSTOP SIGTSTP SIGTTIN SIGTTOU", STOP),
    ("SIGCONT", CONTINUE),
):
    _ACTIONS.update(dict.fromkeys(_names.split(), _action))
assert set(_ACTIONS) == set(SIGNAL_NAMES), "every IR signal needs a default action"


def check_signal(sig: Signal) -> None:
    """Raise ValueError for a standard signal given as a number or an unknown name."""
    if isinstance(sig, str) and sig not in _ACTIONS:
        raise ValueError(f"unknown signal {sig!r}")
    if isinstance(sig, int) and 1 <= sig < 32:
        raise ValueError(f"signal {sig}: standard signals are passed by name (the ABI table "
                         "translates numbers)")


def valid(sig: Signal, max_signal: int) -> bool:
    """Whether kill() accepts the signal (0 included); invalid ones are EINVAL."""
    check_signal(sig)
    return isinstance(sig, str) or sig == 0 or 32 <= sig <= max_signal


def default_action(sig: Signal) -> str:
    """The default disposition: term, core, ignore, stop or continue (realtime: term)."""
    check_signal(sig)
    return _ACTIONS[sig] if isinstance(sig, str) else TERM


def order_key(sig: Signal, order: tuple[str, ...]) -> tuple[int, int]:
    """Sort key for taking pending signals: standard ones in `order`, then realtime by number."""
    return (0, order.index(sig)) if isinstance(sig, str) else (1, sig)


# -- dispositions, sets and siginfo ----------------------------------------------------------

UNBLOCKABLE = frozenset({"SIGKILL", "SIGSTOP"})
HANDLER, IGN, DFL = "handler", "SIG_IGN", "SIG_DFL"


@dataclass(frozen=True)
class Action:
    """A signal's disposition: `handler` (the recording handler), SIG_IGN or SIG_DFL, with its
    SA_* flag names (in ir.SA_FLAGS order) and the signals its handler blocks."""

    handler: str = DFL
    flags: tuple[str, ...] = ()
    mask: frozenset = frozenset()


DEFAULT = Action()


@dataclass(frozen=True)
class SigInfo:
    """What a handler with SA_SIGINFO sees: si_code's name and si_pid (a kernel pid, 0 for the
    kernel itself)."""

    signal: Signal
    code: str
    pid: int = 0


def blockable(sigs) -> frozenset:
    """A mask as the kernel stores it: SIGKILL and SIGSTOP silently dropped."""
    return frozenset(sigs) - UNBLOCKABLE


def canonical(sigs) -> tuple:
    """A signal set in report order: standard signals by number, then realtime ones."""
    names = sorted((s for s in sigs if isinstance(s, str)), key=SIGNAL_NAMES.index)
    return tuple(names) + tuple(sorted(s for s in sigs if isinstance(s, int)))


def actionable(sig: Signal, max_signal: int) -> bool:
    """Whether sigaction accepts the signal: a valid number other than SIGKILL and SIGSTOP."""
    check_signal(sig)
    if isinstance(sig, int):
        return 32 <= sig <= max_signal
    return sig not in UNBLOCKABLE


def ignores(action: Action, sig: Signal) -> bool:
    """Whether the action discards the signal (SIG_IGN, or SIG_DFL of an ignore-by-default one)."""
    if sig in UNBLOCKABLE:
        return False
    return action.handler == IGN or (action.handler == DFL
                                     and default_action(sig) in (IGNORE, CONTINUE))
