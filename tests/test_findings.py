"""Known target limitations: they explain divergences, and never hide a different one."""
from __future__ import annotations

import dataclasses

from conformance.compare import AGREES, DIVERGES, assess
from conformance.events import Call, Errno, Exit, Expected, Handler, Names, Outcome, WaitStatus
from conformance.findings import KNOWN, explain


def handler(aligned=True):
    return Handler("SIGUSR1", 1, False, aligned, Names(("SS_DISABLE",)), 0)


def outcome(*events):
    return Outcome(((0, tuple(events)),), ((0, WaitStatus("exited", 0)),))


def test_a_tolerated_difference_alone_is_a_known_limitation(parse):
    program = parse("sigaction(SIGUSR1, handler)\nkill(self, SIGUSR1)\n")
    want = Expected((outcome(Call(0, 0, ("SIG_DFL", Names(), Names())), handler(), Call(1, 0), Exit(0)),))
    seen = outcome(Call(0, 0, ("SIG_DFL", Names(), Names())), handler(aligned=False), Call(1, 0), Exit(0))
    verdict = assess(program, 0, want, seen)
    assert verdict.status == DIVERGES and "MISALIGNED" in verdict.detail
    qemu = explain(verdict, "x86_64-qemu-user", want)
    assert qemu.status == KNOWN and "qemu-x86_64-signal-frame-alignment" in qemu.detail
    assert explain(verdict, "x86_64-native", want).status == DIVERGES  # not this target's finding


def test_a_divergence_behind_a_tolerated_one_is_still_reported(parse):
    program = parse("sigaction(SIGUSR1, handler)\nkill(self, SIGUSR1)\n")
    want = Expected((outcome(Call(0, 0, ("SIG_DFL", Names(), Names())), handler(), Call(1, 0), Exit(0)),))
    seen = outcome(Call(0, 0, ("SIG_DFL", Names(), Names())), handler(aligned=False),
                   Call(1, Errno("EPERM")), Exit(0))
    verdict = explain(assess(program, 0, want, seen), "x86_64-qemu-user", want)
    assert verdict.status == DIVERGES
    assert "expected 0, observed -EPERM" in verdict.detail and "after setting aside" in verdict.detail
    assert verdict.observed == seen  # the report keeps what was really observed


def test_a_finding_matches_only_its_call_and_operands(parse):
    program = parse("c = fork {\n}\nkill(c, 64)\nkill(c, 40)\nwaitpid(c)\n")
    base = [Call(0, "pid"), Call(1, 0), Call(2, 0)]
    want = Expected((outcome(*base, Call(3, "pid"), Exit(0)),))
    at_64 = assess(program, 0, want, outcome(base[0], Call(1, Errno("EINVAL")), base[2], Call(3, "pid"), Exit(0)))
    at_40 = assess(program, 0, want, outcome(base[0], base[1], Call(2, Errno("EINVAL")), Call(3, "pid"), Exit(0)))
    assert explain(at_64, "aarch64-qemu-user", want).status == KNOWN
    assert explain(at_40, "aarch64-qemu-user", want).status == DIVERGES
    assert explain(at_64, "x86_64-native", want).status == DIVERGES


def test_agreement_is_left_alone(parse):
    program = parse("getpid()\n")
    want = Expected((outcome(Call(0, 5), Exit(0)),))
    verdict = assess(program, 0, want, outcome(Call(0, 5), Exit(0)))
    assert verdict.status == AGREES
    assert explain(verdict, "x86_64-qemu-user", want) == verdict
    assert dataclasses.replace(verdict) == verdict
