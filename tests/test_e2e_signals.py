"""End to end for the signal family: the signals corpus on every target, and mutation proofs
that the register probes and the handler records catch a broken sigreturn and a lost
SA_ONSTACK. Which programs must diverge is derived from the oracle's own prediction."""
from __future__ import annotations

import pytest

from conformance.check import check
from conformance.cli import load_corpus
from conformance.compare import AGREES, DIVERGES
from conformance.events import Call, Changed, Exit, Handler, Names
from conformance.lower import Faults
from e2e import E2E_TARGETS, assert_caught_exactly, disagreements, runner_or_skip
from oracle import predict

pytestmark = pytest.mark.e2e

# The register a broken sigreturn "forgets", per ISA: callee-saved, so only a probe notices.
FORGOTTEN = {"x86_64": "rbx", "aarch64": "x19"}


@pytest.fixture(scope="module")
def signals():
    programs = load_corpus("signals")
    return programs, [predict(p) for p in programs]


_baselines: dict[str, set[str]] = {}


def agreeing(target, runner, programs, expected) -> set[str]:
    """Programs that agree on the target without any fault: the ones a mutation can be seen in
    (a program already explained by a known target limitation shows nothing new)."""
    if target not in _baselines:
        report = check(programs, expected, runner)
        _baselines[target] = {v.program.name for v in report.verdicts if v.status == AGREES}
    return _baselines[target]


@pytest.mark.parametrize("target", E2E_TARGETS)
def test_signals_corpus_agrees_with_the_oracle(signals, target):
    runner = runner_or_skip(target)
    programs, expected = signals
    bad = disagreements(check(programs, expected, runner))
    assert not bad, "\n".join(bad)


def probes_spanning_a_handler(expected) -> bool:
    """Whether some probed call of the prediction had a handler run during it."""
    for outcome in expected.outcomes:
        for _, events in outcome.procs:
            handled = False
            for event in events:
                if isinstance(event, Handler):
                    handled = True
                elif isinstance(event, (Call, Exit)):
                    if handled and isinstance(event, Call) and event.outs and isinstance(event.outs[-1], Changed):
                        return True
                    handled = False
    return False


def shows_sa_onstack(expected) -> bool:
    """Whether the prediction shows SA_ONSTACK at work: a handler on the alternate stack, or
    the flag read back from an old action."""
    for o in expected.outcomes:
        for _, events in o.procs:
            for e in events:
                if isinstance(e, Handler) and e.on_altstack:
                    return True
                if isinstance(e, Call) and any(isinstance(v, Names) and "SA_ONSTACK" in v.names
                                               for v in e.outs):
                    return True
    return False


@pytest.mark.parametrize("target", ["x86_64-native", "aarch64-qemu-user"])
def test_a_sigreturn_that_forgets_a_register_is_caught_by_the_probes(signals, target):
    runner = runner_or_skip(target)
    programs, expected = signals
    reg = FORGOTTEN[runner.isa]
    baseline = agreeing(target, runner, programs, expected)
    must = {p.name for p, e in zip(programs, expected) if probes_spanning_a_handler(e)} & baseline
    assert len(must) >= 3, "the signals corpus should probe calls that a handler interrupts"
    report = check(programs, expected, runner, faults=Faults(corrupt_saved_register=reg))
    for v in assert_caught_exactly(report, must, baseline):
        assert v.status == DIVERGES
        assert f"changed: {reg}]" in v.detail, v.detail
        assert "registers intact]" in v.detail, v.detail


@pytest.mark.parametrize("target", ["x86_64-native", "aarch64-qemu-user"])
def test_a_handler_that_ignores_sa_onstack_is_caught(signals, target):
    runner = runner_or_skip(target)
    programs, expected = signals
    baseline = agreeing(target, runner, programs, expected)
    must = {p.name for p, e in zip(programs, expected) if shows_sa_onstack(e)} & baseline
    assert len(must) >= 3, "the signals corpus should run handlers on the alternate stack"
    report = check(programs, expected, runner, faults=Faults(drop_sa_onstack=True))
    for v in assert_caught_exactly(report, must, baseline):
        lost_stack = "on the alternate stack" in v.detail and "off the alternate stack" in v.detail
        lost_flag = "SA_ONSTACK" in v.detail and v.difference.op_text.startswith("sigaction(")
        assert lost_stack or lost_flag, v.detail
