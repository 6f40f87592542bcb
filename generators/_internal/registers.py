"""The registers family: the other families' steps with `probe` on many of their ops.

A probe checks that a call preserved every register the ABI says it must; the ones that
matter most are calls a handler interrupts or runs after (sigsuspend, pause, an interrupted
read, spin), so steps that run handlers are drawn three times as often, and come first,
fewest ops first: a choice shrinks towards the first template, so a failing probe shrinks
towards the smallest step that runs a handler across it (a self-signal, a timer) rather than
towards a fork whose child waits for its parent's kill.
"""
from __future__ import annotations

from dataclasses import replace

from generators._internal import altstack, pipes, poll, process, signals, timers
from generators._internal.build import Builder, Template
from generators._internal.model import Proc

FAMILY = "registers"


def _probing(build):
    def probed(b: Builder, p: Proc, room: int) -> None:
        outer, b.probe = b.probe, True
        try:
            build(b, p, room)
        finally:
            b.probe = outer
    return probed


def _wrap(t: Template) -> Template:
    return replace(t, name="probed-" + t.name, family=FAMILY, build=_probing(t.build),
                   weight=t.weight * (3 if t.handlers else 1))


TEMPLATES = tuple(sorted(
    (_wrap(t) for module in (process, timers, signals, pipes, poll, altstack)
     for t in module.TEMPLATES if t.family == module.FAMILY and t.name != "ending"),
    key=lambda t: (not t.handlers, t.min_ops)))
