"""Shrinking helpers of conformance.explore, with a predicate instead of a target run."""
from __future__ import annotations

from conformance.explore import _with_dependents, _without_all, minimise
from conformance.syntax import format as format_program

PROGRAM = """\
r1, w2 = pipe()
c3 = fork {
    write(w2, 7)
    d4 = dup(r1)
    close(d4)
}
read(r1, 1)
sigaltstack(32768, 0)
getpid()
waitpid(c3)
"""


def test_dependents_of_a_pipe_are_every_use_of_its_fds(parse):
    program = parse(PROGRAM)
    group = _with_dependents(program.body, (0,))
    assert group == [(0,), (1, 0), (1, 1), (1, 2), (2,)]
    rest = format_program(program.__class__(body=_without_all(program.body, group)))
    assert "pipe" not in rest and "read" not in rest and "write" not in rest
    assert "c3 = fork" in rest and "waitpid(c3)" in rest


def test_dependents_of_a_fork_include_the_wait(parse):
    program = parse(PROGRAM)
    assert _with_dependents(program.body, (1,)) == [(1,), (5,)]


def test_minimise_reaches_the_op_that_matters(parse):
    program = parse(PROGRAM)
    calls = []

    def still_fails(candidate):
        calls.append(candidate)
        return "sigaltstack" in format_program(candidate)

    smallest = minimise(program, still_fails)
    assert format_program(smallest).strip().splitlines()[-1] == "sigaltstack(32768)"
    assert len(smallest.body) == 1
    assert len(calls) < 20  # dependency groups go in one step, not op by op


def test_minimise_keeps_what_the_failure_needs_and_makes_no_new_hang(parse):
    program = parse(PROGRAM)
    smallest = minimise(program, lambda p: "read(r1, 1)" in format_program(p))
    # without the child's write, read(r1, 1) would block forever: not a smaller repro
    assert [op.call for op in smallest.body] == ["pipe", "fork", "read"]
    assert [op.call for op in smallest.body[1].body] == ["write"]
