"""Normalisation through the ABI table, and verdicts with the first differing record."""
from __future__ import annotations

from conformance import trace
from conformance.compare import AGREES, CRASHED, DIVERGES, TARGET_ERROR, judge, observe
from conformance.events import Call, Errno, Exit, Expected, Outcome, Pid, WaitStatus
from targets import tables
from test_trace import rec

PROGRAM = '''\
r, w = pipe()
c = fork {
    getppid()
    exit(3)
}
read(w, 4)
waitpid(c)
'''


def batch_output(child_exit=3, read_ret=-9, finished=True, driver_pid=50):
    lines = [rec(0, 0xff, 0, "I", [driver_pid]), rec(0, 0xff, 1, "G", [60]),
             rec(0, 0, 0, "R", [0, 0, 3, 4]), rec(0, 0, 1, "F", [1, 61, 1]),
             rec(0, 1, 0, "R", [1, 0]), rec(0, 1, 1, "R", [2, 60]), rec(0, 1, 2, "E", [child_exit]),
             rec(0, 0, 2, "R", [4, read_ret]), rec(0, 0, 3, "R", [5, 61, child_exit << 8]),
             rec(0, 0, 4, "E", [0]), rec(0, 0xff, 2, "Z", [60, 0])]
    if finished:
        lines.append(rec(0, 0xff, 3, "N", []))
    return trace.parse("\n".join(lines).encode())


def expected_outcome(child_exit=3):
    return Outcome(
        procs=((0, (Call(0, 0, (3, 4)), Call(1, Pid(1)), Call(4, Errno("EBADF")),
                    Call(5, Pid(1), (WaitStatus("exited", child_exit),)), Exit(0))),
               (1, (Call(1, 0), Call(2, Pid(0)), Exit(child_exit)))),
        reaped=((0, WaitStatus("exited", 0)),))


def test_normalises_errno_pids_and_wait_status(parse):
    t = batch_output()
    outcome, problems = observe(parse(PROGRAM), t.program(0), tables.load("linux-x86_64"), t.driver_pid)
    assert not problems
    assert outcome == expected_outcome()


def test_agreement_and_a_divergence_in_words(parse):
    program, abi = parse(PROGRAM), tables.load("linux-aarch64")
    t = batch_output(read_ret=-11)
    ok = judge(program, 0, batch_output().program(0), Expected((expected_outcome(),)), abi, 50)
    assert ok.status == AGREES
    bad = judge(program, 0, t.program(0), Expected((expected_outcome(),)), abi, 50)
    assert bad.status == DIVERGES
    assert bad.detail == "p0, record 2 at `read(w, 4)`: expected -EBADF, observed -EAGAIN"


def test_any_allowed_outcome_agrees_and_the_closest_explains(parse):
    program, abi = parse(PROGRAM), tables.load("linux-x86_64")
    allowed = Expected((expected_outcome(child_exit=4), expected_outcome()))
    assert judge(program, 0, batch_output().program(0), allowed, abi, 50).status == AGREES
    v = judge(program, 0, batch_output(child_exit=5).program(0), allowed, abi, 50)
    assert v.status == DIVERGES and "none of the 2 allowed outcomes" in v.detail


def test_unfinished_and_unstarted_programs(parse):
    program, abi = parse(PROGRAM), tables.load("linux-x86_64")
    v = judge(program, 0, batch_output(finished=False).program(0), Expected((expected_outcome(),)), abi, 50)
    assert v.status == CRASHED
    v = judge(program, 1, batch_output().program(1), Expected((expected_outcome(),)), abi, 50)
    assert v.status == TARGET_ERROR and "never started" in v.detail
