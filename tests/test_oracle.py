"""predict() on programs in the text format; every expectation is worked out by hand from
POSIX/Linux rules (op indexes are pre-order over the whole program)."""
from __future__ import annotations

import importlib
from unittest import mock

from hypothesis import HealthCheck, given, settings, strategies as st

from conformance.events import DRIVER, Call, Errno, Exit, Outcome, Pid, WaitStatus
from conformance.ir import pattern
from conformance.syntax import parse
from generators._internal.core import raw_programs
from oracle import LINUX, POSIX, predict

EXITED0 = WaitStatus("exited", 0)
KILLED = WaitStatus("killed", "SIGKILL", False)


def only(text: str, profile=LINUX) -> Outcome:
    """The single outcome a deterministic program must have."""
    expected = predict(parse(text), profile)
    assert len(expected.outcomes) == 1, expected.outcomes
    assert expected.notes == ()
    return expected.outcomes[0]


def test_eof_and_exit_status():
    out = only("""
        r, w = pipe()
        write(w, "hello")
        close(w)
        read(r, 16)
        c = fork {
            exit(3)
        }
        waitpid(c)
    """)
    assert out == Outcome(
        procs=(
            (0, (Call(0, 0, (3, 4)), Call(1, 5), Call(2, 0), Call(3, 5, data=b"hello"),
                 Call(4, Pid(1)), Call(6, Pid(1), (WaitStatus("exited", 3),)), Exit(0))),
            (1, (Call(4, 0), Exit(3))),
        ),
        reaped=((0, EXITED0),),
    )


def test_a_program_without_a_second_process_is_run_once():
    # Nothing was ever ready beside it, so round robin would only repeat the first run; a
    # program with a child still gets every order and the round-robin run besides.
    oracle_predict = importlib.import_module("oracle.predict")
    with mock.patch.object(oracle_predict._Run, "run", autospec=True,
                           side_effect=oracle_predict._Run.run) as run:
        predict(parse("r, w = pipe()\nwrite(w, \"hi\")\nread(r, 2)"))
        assert run.call_count == 1
        run.reset_mock()
        predict(parse("c = fork {\n    getpid()\n}\nwaitpid(c)"))
        assert run.call_count >= 3


def test_racy_kill_has_several_outcomes():
    expected = predict(parse("""
        c = fork {
            getpid()
        }
        kill(c, SIGTERM)
        waitpid(c)
    """))
    assert len(expected.outcomes) > 1
    assert expected.notes == (f"schedule-dependent: {len(expected.outcomes)} outcomes",)
    parent = lambda status: (Call(0, Pid(1)), Call(2, 0), Call(3, Pid(1), (status,)), Exit(0))
    # Killed before it ever ran: the child records nothing.
    assert Outcome(procs=((0, parent(WaitStatus("killed", "SIGTERM"))),),
                   reaped=((0, EXITED0),)) in expected.outcomes
    # Ran to the end first: kill hits a zombie (still 0) and the child exited normally.
    assert Outcome(procs=((0, parent(EXITED0)), (1, (Call(0, 0), Call(1, Pid(1)), Exit(0)))),
                   reaped=((0, EXITED0),)) in expected.outcomes


def test_synchronised_kill_has_one_outcome():
    # The child announces it is ready and then blocks on a pipe only the parent could write.
    out = only("""
        r1, w1 = pipe()
        r2, w2 = pipe()
        c = fork {
            write(w1, "x")
            read(r2, 1)
        }
        read(r1, 1)
        kill(c, SIGTERM)
        waitpid(c)
    """)
    assert out.events(1) == (Call(2, 0), Call(3, 1))
    assert out.events(0) == (
        Call(0, 0, (3, 4)), Call(1, 0, (5, 6)), Call(2, Pid(1)), Call(5, 1, data=b"x"),
        Call(6, 0), Call(7, Pid(1), (WaitStatus("killed", "SIGTERM"),)), Exit(0))


def test_reading_while_holding_the_write_end_hangs():
    out = only("""
        r, w = pipe()
        getpid()
        read(r, 1)
    """)
    assert out == Outcome(procs=((0, (Call(0, 0, (3, 4)), Call(1, Pid(0)))),),
                          reaped=((0, KILLED),), hung=True)


def test_sigpipe_kills_before_the_write_returns():
    out = only("""
        r, w = pipe()
        close(r)
        write(w, "x")
        getpid()
    """)
    assert out.procs == ((0, (Call(0, 0, (3, 4)), Call(1, 0))),)
    assert out.reaped == ((0, WaitStatus("killed", "SIGPIPE")),)


def test_self_kill_with_a_realtime_signal_and_an_invalid_one():
    out = only("""
        kill(self, 65)
        kill(self, SIGCHLD)
        kill(self, 40)
    """)
    assert out.procs == ((0, (Call(0, Errno("EINVAL")), Call(1, 0))),)
    assert out.reaped == ((0, WaitStatus("killed", 40)),)


def test_orphan_sees_the_driver_as_parent():
    # The read returns EOF only once process 0 is dead, so getppid sees the reaper.
    out = only("""
        r, w = pipe()
        c = fork {
            close(w)
            read(r, 1)
            getppid()
        }
        exit(0)
    """)
    assert out == Outcome(
        procs=((0, (Call(0, 0, (3, 4)), Call(1, Pid(1)), Exit(0))),
               (1, (Call(1, 0), Call(2, 0), Call(3, 0), Call(4, Pid(DRIVER)), Exit(0)))),
        reaped=((0, EXITED0), (1, EXITED0)),
    )


def test_dead_parent_is_a_zombie_until_the_driver_reaps_it():
    expected = predict(parse("""
        r, w = pipe()
        c = fork {
            close(w)
            read(r, 1)
            kill(parent, 0)
        }
        exit(0)
    """))
    results = {o.events(1)[3] for o in expected.outcomes}
    assert results == {Call(4, 0), Call(4, Errno("ESRCH"))}


def test_stop_and_continue():
    out = only("""
        c = fork {
            kill(self, SIGSTOP)
            getpid()
        }
        waitpid(c, WUNTRACED)
        kill(c, SIGCONT)
        waitpid(c)
    """)
    assert out.events(0) == (
        Call(0, Pid(1)), Call(3, Pid(1), (WaitStatus("stopped", "SIGSTOP"),)), Call(4, 0),
        Call(5, Pid(1), (EXITED0,)), Exit(0))
    # The kill record is written after SIGCONT resumes the child.
    assert out.events(1) == (Call(0, 0), Call(1, 0), Call(2, Pid(1)), Exit(0))


def test_a_process_stopped_for_good_hangs():
    out = only("""
        c = fork {
            kill(self, SIGSTOP)
        }
        waitpid(c)
    """)
    assert out == Outcome(procs=((0, (Call(0, Pid(1)),)), (1, (Call(0, 0),))),
                          reaped=((0, KILLED), (1, KILLED)), hung=True)


def test_big_write_through_a_reader():
    # The writer fills all 16 pages in one step, so the reader always finds 64 KiB first.
    out = only("""
        r, w = pipe()
        c = fork {
            close(w)
            read(r, 65536)
            read(r, 65536)
            read(r, 65536)
        }
        write(w, 100000)
        close(w)
        waitpid(c)
    """)
    data = pattern(100000)
    assert out.events(0)[2:4] == (Call(6, 100000), Call(7, 0))
    assert out.events(1) == (Call(1, 0), Call(2, 0), Call(3, 65536, data=data[:32]),
                             Call(4, 34464, data=data[65536:65568]), Call(5, 0), Exit(0))


def test_page_accounting_differs_between_profiles():
    text = """
        r, w = pipe2(O_NONBLOCK)
        write(w, 1)
        write(w, 61440)
        write(w, 1)
    """
    assert only(text, LINUX).events(0)[3] == Call(3, Errno("EAGAIN"))  # 16 pages in use
    assert only(text, POSIX).events(0)[3] == Call(3, 1)                # bytes: room left


def test_failed_calls_bind_invalid_fds():
    out = only("""
        r, w = pipe2(0x1000)
        close(r)
        d = dup(w)
        close(d)
        a, b = pipe()
        e = dup(b)
        close(b)
        dup2(e, 20)
        write(20, "z")
        read(a, 4)
    """)
    assert out.events(0) == (
        Call(0, Errno("EINVAL"), (-1, -1)), Call(1, Errno("EBADF")), Call(2, Errno("EBADF")),
        Call(3, Errno("EBADF")), Call(4, 0, (3, 4)), Call(5, 5), Call(6, 0), Call(7, 20),
        Call(8, 1), Call(9, 1, data=b"z"), Exit(0))


def test_wnohang_then_wait():
    out = only("""
        r, w = pipe()
        c = fork {
            close(w)
            read(r, 1)
        }
        waitpid(c, WNOHANG)
        close(w)
        waitpid(c)
    """)
    assert out.events(0) == (Call(0, 0, (3, 4)), Call(1, Pid(1)), Call(4, 0), Call(5, 0),
                             Call(6, Pid(1), (EXITED0,)), Exit(0))
    assert out.events(1) == (Call(1, 0), Call(2, 0), Call(3, 0), Exit(0))


def test_only_own_children_can_be_waited_for():
    out = only("""
        a = fork {
            exit(1)
        }
        b = fork {
            waitpid(a)
            waitpid(self)
            waitpid(parent)
            wait4(-1, WNOHANG)
        }
        waitpid(a)
        waitpid(b)
    """)
    assert out.events(2) == (Call(2, 0),) + tuple(Call(i, Errno("ECHILD")) for i in range(3, 7)) \
        + (Exit(0),)
    assert out.events(0)[2:4] == (Call(7, Pid(1), (WaitStatus("exited", 1),)),
                                  Call(8, Pid(2), (EXITED0,)))


def test_prediction_is_deterministic():
    text = """
        c = fork {
            getppid()
        }
        kill(c, SIGKILL)
    """
    assert predict(parse(text)) == predict(parse(text))


def _every_order(program, profile):
    """The prediction with no priority order skipped."""
    predictor = importlib.import_module("oracle.predict")  # `oracle.predict` is the function
    with mock.patch.object(predictor, "_decides_alike", lambda order, points: False):
        return predict(program, profile)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=raw_programs(max_ops=15), profile=st.sampled_from([LINUX, POSIX]))
def test_skipping_orders_that_decide_alike_keeps_every_outcome(program, profile):
    # POSIX's open delivery order makes some of these programs schedule-dependent.
    assert predict(program, profile) == _every_order(program, profile)


def test_a_racy_program_keeps_its_outcomes_when_orders_are_skipped():
    program = parse("""
        a = fork {
            kill(parent, SIGUSR1)
        }
        b = fork {
            kill(parent, SIGUSR2)
            getppid()
        }
        sigaction(SIGUSR1, handler)
        sigaction(SIGUSR2, handler)
        waitpid(a)
        waitpid(b)
    """)
    full = _every_order(program, LINUX)
    assert len(full.outcomes) > 2
    assert predict(program, LINUX) == full
