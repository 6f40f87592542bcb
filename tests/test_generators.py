"""The program generators: valid, round-tripping, deterministic programs in every family;
argument checks; shrinking; how rarely the oracle guard has to reject; call coverage."""
from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from conformance import ir, syntax
from conformance.ir import Group, Ref
from generators import DEFAULT_WEIGHTS, FAMILIES, programs, sample
from generators._internal.build import Builder
from generators._internal.core import raw_programs
from oracle import predict

CHECKS = settings(max_examples=50, deadline=None, database=None)
# Statistics over one fixed sample: the same examples every run.
SAMPLE = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                  phases=[Phase.generate])


def ops(program) -> list[ir.Op]:
    return [loc.op for loc in ir.walk(program)]


def check_timers(program) -> None:
    """Timer values, sleeps and poll timeouts stay within 10..200 ms (a timer that ends a
    spin within 5..8, its period within 8..12: two 4 ms ticks at least); alarm only
    disarms."""
    listed = ops(program)
    for k, op in enumerate(listed):
        if op.call == "setitimer" and op.args[0] in ir.TIMERS:
            ends_a_spin = k + 1 < len(listed) and listed[k + 1].call == "spin"
            value, period = (op.args[1:] + (0,))[:2]
            if ends_a_spin:
                assert 5 <= value <= 8 and (period == 0 or 8 <= period <= 12), op
            else:
                assert all(v == 0 or 10 <= v <= 200 for v in op.args[1:]), op
        elif op.call == "alarm":
            assert op.args == (0,), op
        elif op.call == "nanosleep":
            assert op.args[0] <= 200, op
        elif op.call in ("poll", "ppoll"):
            assert op.args[1] in (-1, 0) or 10 <= op.args[1] <= 200, op


TIMER_SIGNAL = {"ITIMER_REAL": "SIGALRM", "ITIMER_VIRTUAL": "SIGVTALRM", "ITIMER_PROF": "SIGPROF"}


def scan_for(family: str, flaw) -> list[str]:
    """Every sampled program of `family` for which `flaw(program)` is true, as text."""
    bad = []

    @SAMPLE
    @given(programs(family=family))
    def scan(program):
        if flaw(program):
            bad.append(syntax.format(program))
    scan()
    return bad


def nodefer_meets_periodic_timer(program) -> str:
    """A wait for a periodic timer's signal whose handler has SA_NODEFER: then a handler
    slower than the interval meets the next expiry (two handlers where the oracle sees one).
    Returns the offending op's text, or ''."""
    def visit(body, nodefer: set) -> str:
        periodic = set()
        for op in body:
            if op.call == "sigaction" and len(op.args) >= 2:
                flags = op.args[2].names if len(op.args) > 2 else ()
                (nodefer.add if op.args[1] == "handler" and "SA_NODEFER" in flags
                 else nodefer.discard)(op.args[0])
            elif op.call == "setitimer":
                which, value = op.args[0], op.args[1]
                interval = op.args[2] if len(op.args) > 2 else 0
                if which in TIMER_SIGNAL:  # not an invalid-timer error path
                    (periodic.add if value and interval else periodic.discard)(TIMER_SIGNAL[which])
            elif op.call == "alarm":
                periodic.discard("SIGALRM")  # alarm replaces ITIMER_REAL, never periodic
            elif op.call in ("sigsuspend", "spin") and periodic & nodefer:
                return syntax.format_op(op)[0]
            if op.body is not None:
                found = visit(op.body, set(nodefer))  # actions are inherited, timers not
                if found:
                    return found
        return ""
    return visit(program.body, set())


def kills_a_child(program) -> bool:
    """Some process sends a signal to (the group of) a child it forked."""
    def visit(body) -> bool:
        kids = set()
        for op in body:
            target = op.args[0] if op.call == "kill" else None
            if isinstance(target, (Ref, Group)) and target.name in kids:
                return True
            if op.body is not None:
                if visit(op.body):
                    return True
                kids.add(op.binds[0])
        return False
    return visit(program.body)


@pytest.mark.parametrize("family", FAMILIES)
@CHECKS
@given(data=st.data())
def test_every_family_gives_valid_deterministic_programs(family, data):
    program = data.draw(programs(family=family), label="program")
    text = syntax.format(program)
    assert syntax.parse(text) == program, text
    assert syntax.format(syntax.parse(text)) == text
    assert len(ops(program)) <= 20
    assert ir.process_count(program) <= 3
    outcomes = predict(program).outcomes
    assert len(outcomes) == 1, text
    assert not outcomes[0].hung, text
    check_timers(program)


@pytest.mark.parametrize("family", ["timers", "registers", "all"])
def test_no_sa_nodefer_handler_waits_for_a_periodic_timer(family):
    """generated/1462 (seed 2) showed it on aarch64-linux-vm under load: SA_NODEFER, a 10 ms
    interval, and the handler met the next expiry before sigsuspend returned."""
    bad = scan_for(family, nodefer_meets_periodic_timer)
    assert not bad, bad[0]


def prof_timer_periodic_while_spinning(program) -> bool:
    """A periodic ITIMER_PROF is armed when process 0 spins."""
    armed = False
    for op in program.body:
        if op.call == "setitimer" and op.args and op.args[0] == "ITIMER_PROF":
            armed = len(op.args) > 2 and op.args[1] > 0 and op.args[2] > 0
        elif op.call == "spin" and armed:
            return True
    return False


@pytest.mark.parametrize("family", ["timers", "all"])
def test_no_periodic_prof_timer_around_spin(family):
    """generated/826 (seed 2) on aarch64-linux-vm: a 38 ms ITIMER_PROF interval, and the
    handler's console write (kernel time, which ITIMER_PROF counts) outlasted it."""
    bad = scan_for(family, prof_timer_periodic_while_spinning)
    assert not bad, bad[0]


WAITS = ("pause", "spin", "read", "write", "nanosleep", "poll", "ppoll")


def probed_real_timer_before_a_wait(program) -> bool:
    """A probed setitimer(ITIMER_REAL, value) right before an op that waits for it."""
    listed = ops(program)
    return any(op.call == "setitimer" and op.probe and op.args[0] == "ITIMER_REAL"
               and op.args[1] and nxt.call in WAITS for op, nxt in zip(listed, listed[1:]))


def test_no_probe_between_a_real_timer_and_its_wait():
    """generated/96 (seed 0) on aarch64-qemu-user hung: `probe setitimer(ITIMER_REAL, 5)`,
    the probe's record stalled past 5 ms, the timer fired, and spin() waited for ever."""
    bad = scan_for("registers", probed_real_timer_before_a_wait)
    assert not bad, bad[0]


@settings(max_examples=30, deadline=None, database=None)
@given(programs(max_ops=3, max_procs=1))
def test_small_budgets_are_kept(program):
    assert 1 <= len(ops(program)) <= 3
    assert ir.process_count(program) == 1


@settings(max_examples=30, deadline=None, database=None)
@given(programs(family_weights={**{f: 0 for f in DEFAULT_WEIGHTS}, "pipes": 1}))
def test_a_family_weighted_zero_is_left_out(program):
    assert {op.call for op in ops(program)} <= {
        "pipe", "pipe2", "write", "read", "close", "dup", "dup2", "fork", "waitpid", "wait4",
        "exit", "kill", "getpid"}  # getpid: the program with no step at all


@pytest.mark.parametrize("kwargs, message", [
    (dict(family="signal"), "family='signal' is not a known family; expected one of "
                            "'signals', 'altstack', 'timers', 'pipes', 'poll', 'process', "
                            "'registers', 'all'. Did you mean family='signals'?"),
    (dict(family=None), "family=None is not a known family"),
    (dict(max_ops=0), "max_ops=0 must be at least 1 (a program needs at least one op); "
                      "use max_ops=1"),
    (dict(max_ops=2.5), "max_ops=2.5 must be an int"),
    (dict(max_ops=True), "max_ops=True must be an int"),
    (dict(max_procs=0), "max_procs=0 must be between 1 and 16"),
    (dict(max_procs=40), "max_procs=40 must be between 1 and 16"),
    (dict(family="pipes", family_weights={"pipes": 1}),
     "only applies to family='all', not family='pipes'"),
    (dict(family_weights=[("pipes", 1)]), "must be a mapping from family name to weight"),
    (dict(family_weights={"pipe": 1}), "family_weights has unknown family 'pipe'"),
    (dict(family_weights={"pipes": -1}), "family_weights['pipes']=-1 must be a finite number"),
    (dict(family_weights={"pipes": float("nan")}), "must be a finite number >= 0"),
    (dict(family_weights=dict.fromkeys(DEFAULT_WEIGHTS, 0)), "leaves every family at weight 0"),
])
def test_arguments_are_checked_when_the_strategy_is_built(kwargs, message):
    with pytest.raises(InvalidArgument) as info:
        programs(**kwargs)  # not drawn from: the check is eager
    assert message in str(info.value)


def test_shrinks_to_a_small_program_that_kills_a_child():
    minimal = find(programs(), lambda p: kills_a_child(p) and len(ops(p)) >= 8,
                   settings=settings(database=None, deadline=None, max_examples=1000),
                   random=random.Random(0))
    assert len(ops(minimal)) <= 12, syntax.format(minimal)
    assert ir.process_count(minimal) <= 3


def test_fork_bodies_shrink_to_empty():
    # Without pipes, a fork is only the plain fork-and-wait pattern: nothing in it is needed.
    def forks_without_pipes(program) -> bool:
        calls = {op.call for op in ops(program)}
        return "fork" in calls and not calls & {"pipe", "pipe2"}

    minimal = find(programs(family="process"), forks_without_pipes,
                   settings=settings(database=None, deadline=None), random=random.Random(0))
    fork, wait = minimal.body
    assert fork.call == "fork" and fork.body == ()
    assert wait.call in ("waitpid", "wait4")


def test_the_oracle_guard_rarely_rejects():
    seen = Counter()

    @SAMPLE
    @given(raw_programs())
    def measure(program):
        outcomes = predict(program).outcomes
        seen["deterministic" if len(outcomes) == 1 and not outcomes[0].hung else "not"] += 1

    measure()
    assert seen["deterministic"] >= 0.95 * sum(seen.values()), seen


def test_every_call_appears_in_a_few_hundred_programs():
    calls = Counter()

    @SAMPLE
    @given(programs())
    def collect(program):
        calls.update({op.call for op in ops(program)})

    collect()
    assert set(calls) == set(ir.CALLS), sorted(set(ir.CALLS) - set(calls))


def test_sample_gives_distinct_programs():
    drawn = sample(300, seed=1)
    assert len({p.body for p in drawn}) == len(drawn) == 300
    assert [p.name for p in drawn[:2]] == ["generated/0", "generated/1"]
    assert drawn == sample(300, seed=1)  # the top-up runs are seeded too


def test_sample_stops_when_the_family_runs_out():
    # altstack has a few dozen one-op programs: asking for more gives those, once each.
    drawn = sample(200, family="altstack", max_ops=1, seed=0)
    assert 20 <= len(drawn) < 200
    assert len({p.body for p in drawn}) == len(drawn)


def test_a_subset_stops_drawing_once_it_has_most():
    builder = Builder(None, 20, 3, [])
    flips = iter([False, True, True])
    builder.flip = lambda p_true, of: next(flips)  # a fourth flip would raise StopIteration
    assert builder.subset(["a", "b", "c", "d", "e"], most=2) == ["b", "c"]


def test_threads_drawing_at_once_draw_what_each_would_alone():
    # Every step's arguments wait beside the one shared step strategy, per thread: threads
    # drawing side by side must not take each other's (nor leave any behind).
    from concurrent.futures import ThreadPoolExecutor

    from generators._internal import build
    alone = [sample(60, seed=s, max_ops=30) for s in (4, 5)]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda s: sample(60, seed=s, max_ops=30), (4, 5)))
    assert together == alone
    assert build._pending_steps.stack == []
