"""`programs()`: the public strategy, its argument checks, and the oracle guard."""
from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Mapping
from types import MappingProxyType

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from conformance.ir import Program
from generators._internal import altstack, pipes, poll, process, registers, signals, timers
from generators._internal.build import Builder, Template
from generators._internal.model import Proc

FAMILIES = ("signals", "altstack", "timers", "pipes", "poll", "process", "registers", "all")

# Relative weights of the families in family="all" (each step's family is drawn by weight).
DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType({
    "signals": 3, "altstack": 1, "timers": 3, "pipes": 3, "poll": 2, "process": 3,
    "registers": 1,
})

_TEMPLATES: dict[str, tuple[Template, ...]] = {
    "signals": signals.TEMPLATES, "altstack": altstack.TEMPLATES, "timers": timers.TEMPLATES,
    "pipes": pipes.TEMPLATES, "poll": poll.TEMPLATES, "process": process.TEMPLATES,
    "registers": registers.TEMPLATES,
}
# Simplest first: a choice shrinks towards the first entry (process's getpid & co.).
_SHRINK_ORDER = ("process", "pipes", "signals", "poll", "timers", "altstack", "registers")
_MAX_PROCS = 16   # the oracle explores schedules over every process; keep that tractable
_SCALE = 1000     # integer resolution of the weights


def programs(*, family: str = "all", max_ops: int = 20, max_procs: int = 3,
             family_weights: Mapping[str, float] | None = None) -> SearchStrategy[Program]:
    """Valid, deterministic Programs over the calls of one family (or of all of them).

    Programs are built from step patterns that are deterministic by construction, steered by
    a model of each process (live fds and pipe contents, dispositions, masks, pending
    signals, the alternate stack, children), so that most ops do something meaningful while
    error paths (EBADF, ECHILD, EINVAL, ESRCH, ENOMEM, EPERM, EAGAIN, EPIPE...) still occur.
    As a final guard the oracle must predict exactly one outcome, and no hang.

    `max_ops` bounds the ops of the whole program (children's included); `max_procs` the
    processes it creates, process 0 included. With family="all", each step's family is drawn
    by `family_weights`, merged over `DEFAULT_WEIGHTS` (a weight of 0 leaves a family out).

    Examples shrink towards fewer steps and ops, simpler calls (earlier alternatives: process
    and pipe basics first), smaller numbers and shorter data, no probes; fork bodies shrink
    towards empty (only the synchronisation a pattern needs stays).
    """
    weights = _check(family, max_ops, max_procs, family_weights)
    return _programs(family=family, max_ops=max_ops, max_procs=max_procs,
                     family_weights=weights).filter(deterministic)


def raw_programs(*, family: str = "all", max_ops: int = 20, max_procs: int = 3,
                 family_weights: Mapping[str, float] | None = None) -> SearchStrategy[Program]:
    """`programs()` without the oracle guard (to measure how rarely the guard rejects)."""
    weights = _check(family, max_ops, max_procs, family_weights)
    return _programs(family=family, max_ops=max_ops, max_procs=max_procs,
                     family_weights=weights)


def deterministic(program: Program) -> bool:
    """Whether the oracle allows exactly one outcome, and that outcome is not a hang."""
    outcomes = prediction(program).outcomes
    return len(outcomes) == 1 and not outcomes[0].hung


def prediction(program: Program, profile=None):
    """The oracle's prediction (default profile: Linux), kept for the programs drawn last: a
    drawn program is predicted by the filter above and again by whoever checks it."""
    from oracle import PROFILES  # imported late: building a strategy needs no oracle
    return _prediction(program, profile or PROFILES["linux"])


@functools.lru_cache(maxsize=1024)
def _prediction(program: Program, profile):
    from oracle import predict
    return predict(program, profile)


def _draw_program(draw, *, family: str, max_ops: int, max_procs: int,
                  family_weights: tuple | None) -> Program:
    b = Builder(draw, max_ops, max_procs, _choices(family, family_weights))
    p0 = Proc()
    b.live.append(p0)
    b.steps(p0, max_ops)
    if not p0.body:  # the first "more?" shrinks to "stop": a program needs one op
        b.op(p0, "getpid")
    return Program(body=tuple(p0.body), doc=f"generated: programs(family={family!r})")


# Named after the public function, so that the strategy's repr shows the arguments given.
_draw_program.__name__ = _draw_program.__qualname__ = "programs"
_programs = st.composite(_draw_program)


@functools.lru_cache(maxsize=None)
def _choices(family: str, family_weights: tuple | None) -> list[tuple[Template, int]]:
    """Every template the family may use, simplest first, with an integer weight."""
    weights = dict(DEFAULT_WEIGHTS, **dict(family_weights or ()))
    families = _SHRINK_ORDER if family == "all" else (family,)
    total = sum(weights[f] for f in families)
    out: list[tuple[Template, int]] = []
    for f in families:
        if family == "all" and not weights[f]:
            continue
        share = weights[f] / total if family == "all" else 1.0
        templates = _TEMPLATES[f]
        t_total = sum(t.weight for t in templates)
        for t in templates:
            out.append((t, max(1, round(_SCALE * share * t.weight / t_total))))
    return out


# -- argument checks -----------------------------------------------------------------------

def _check(family, max_ops, max_procs, family_weights) -> tuple | None:
    """InvalidArgument naming the argument and its value, with a fix; the weights as a
    hashable tuple."""
    if not isinstance(family, str) or family not in FAMILIES:
        raise InvalidArgument(f"family={family!r} is not a known family; expected one of "
                              f"{', '.join(map(repr, FAMILIES))}.{_did_you_mean(family)}")
    _check_int("max_ops", max_ops, 1, None, 20, "a program needs at least one op")
    _check_int("max_procs", max_procs, 1, _MAX_PROCS, 3,
               "process 0 counts; the oracle explores schedules over every process")
    if family_weights is None:
        return None
    if family != "all":
        raise InvalidArgument(f"family_weights={family_weights!r} only applies to "
                              f"family='all', not family={family!r}; drop family_weights "
                              "or use family='all'")
    if not isinstance(family_weights, Mapping):
        raise InvalidArgument(f"family_weights={family_weights!r} must be a mapping from "
                              "family name to weight, e.g. {'timers': 5}")
    for name, weight in family_weights.items():
        if name not in DEFAULT_WEIGHTS:
            raise InvalidArgument(
                f"family_weights has unknown family {name!r}; expected keys among "
                f"{', '.join(map(repr, DEFAULT_WEIGHTS))}.{_did_you_mean(name, quote=True)}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) \
                or not math.isfinite(weight) or weight < 0:
            raise InvalidArgument(f"family_weights[{name!r}]={weight!r} must be a finite "
                                  "number >= 0 (0 leaves the family out)")
    if not any(dict(DEFAULT_WEIGHTS, **family_weights).values()):
        raise InvalidArgument(f"family_weights={dict(family_weights)!r} leaves every family "
                              "at weight 0; give at least one family a positive weight")
    return tuple(sorted(family_weights.items()))


def _did_you_mean(value, quote: bool = False) -> str:
    close = difflib.get_close_matches(str(value).lower(), FAMILIES, n=1)
    if not close:
        return ""
    return f" Did you mean {close[0]!r}?" if quote else f" Did you mean family={close[0]!r}?"


def _check_int(name: str, value, low: int, high: int | None, example: int, why: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name}={value!r} must be an int, e.g. {name}={example}")
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        fixed = max(low, value if high is None else min(value, high))
        raise InvalidArgument(f"{name}={value} must be {bound} ({why}); use {name}={fixed}")
