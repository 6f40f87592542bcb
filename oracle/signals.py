"""Signal names, default actions and validity: the data the kernel model's signal code reads.

A signal is a name from `conformance.ir.SIGNAL_NAMES` or an int: 0 (existence check) or a
realtime signal number 32..profile.max_signal. Standard signals are never ints here, because
their numbers differ between ABIs; the ABI table translates.
"""
from __future__ import annotations

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
