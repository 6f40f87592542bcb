"""Virtual time (interval timers, alarm, nanosleep, spin) and poll/ppoll, in predict() and at
syscall level. Expectations are worked out by hand from docs/semantics.md, Linux's
kernel/time/itimer.c, hrtimer nanosleep, fs/select.c and fs/pipe.c."""
from __future__ import annotations

import textwrap

import pytest

from conformance.events import Call, Errno, Exit, Handler, IntRange, Names, Pid, TimeBound
from conformance.ir import Flags, PollFd, SigSet
from conformance.syntax import parse
from oracle import BLOCKED, LINUX, POSIX, Kernel, Profile, predict
from oracle.timers import alarm_seconds

EINTR = Errno("EINTR")
NONE = Names(())
OFF = (TimeBound(0, 0), TimeBound(0, 0))
# Linux's set_cpu_itimer adds one tick (TICK_NSEC) to an ITIMER_VIRTUAL/PROF value; a tick is
# at most 10 ms (HZ >= 100), so the linux profile lets CPU-timer readbacks exceed by that much.
TICK = 10_000


def H(sig) -> Handler:
    return Handler(sig, 1, False, True, Names(("SS_DISABLE",)), 0, None)


def only(text: str, profile=LINUX):
    found = predict(parse(textwrap.dedent(text)), profile).outcomes
    assert len(found) == 1, found
    return found[0]


def p0(text: str, profile=LINUX) -> tuple:
    return only(text, profile).events(0)


def left(high_us: int, interval_us: int = 0) -> tuple:
    """An armed timer's readback: 1..high µs left, the interval exactly."""
    return (TimeBound(1, high_us), TimeBound(interval_us, interval_us))


# -- interval timers -------------------------------------------------------------------------

def test_itimer_readback_bounds():
    events = p0("""
        setitimer(ITIMER_REAL, 1500, 200)
        getitimer(ITIMER_REAL)
        setitimer(ITIMER_REAL, 0, 300)
        getitimer(ITIMER_REAL)
        setitimer(ITIMER_VIRTUAL, 0, 300)
        getitimer(ITIMER_VIRTUAL)
        setitimer(ITIMER_PROF, 20)
        getitimer(ITIMER_PROF)
        setitimer(5, 10)
        getitimer(7)
    """)
    assert events == (
        Call(0, 0, OFF), Call(1, 0, left(1_500_000, 200_000)),
        Call(2, 0, left(1_500_000, 200_000)),
        Call(3, 0, OFF),                                # disarming REAL clears its interval
        Call(4, 0, OFF),
        Call(5, 0, (TimeBound(0, 0), TimeBound(300_000, 300_000))),  # a CPU timer keeps it
        Call(6, 0, OFF), Call(7, 0, left(20_000 + TICK)),
        Call(8, Errno("EINVAL")), Call(9, Errno("EINVAL")), Exit(0))


def test_the_bound_shrinks_with_elapsed_time_and_reloads():
    events = p0("""
        sigaction(SIGALRM, handler)
        sigprocmask(SIG_BLOCK, SIGALRM)
        setitimer(ITIMER_REAL, 100, 250)
        nanosleep(30)
        getitimer(ITIMER_REAL)
        sigsuspend(0)
        getitimer(ITIMER_REAL)
    """)
    # 30 ms asleep: at most 70 ms left. Fired at 100 ms and reloaded: at most 250 ms left.
    assert events[3:] == (Call(3, 0), Call(4, 0, left(70_000, 250_000)), H("SIGALRM"),
                          Call(5, EINTR), Call(6, 0, left(250_000, 250_000)), Exit(0))


def test_after_a_reload_the_bound_is_the_interval():
    # Taken at 50 ms, the timer restarts for 100 ms; 80 ms in, the model's next expiry is 20 ms
    # away, but a real wake-up a little late could carry it past a reload the model has not
    # reached, so only the interval bounds the value.
    events = p0("""
        sigaction(SIGALRM, handler)
        setitimer(ITIMER_REAL, 50, 50)
        sigsuspend(0)
        nanosleep(30)
        getitimer(ITIMER_REAL)
    """)
    assert events[2:] == (H("SIGALRM"), Call(2, EINTR), Call(3, 0),
                          Call(4, 0, left(50_000, 50_000)), Exit(0))


# Linux's it_real_fn sends SIGALRM and returns HRTIMER_NORESTART; dequeue_signal restarts a
# periodic ITIMER_REAL when it takes SIGALRM from the process's queue (hrtimer_forward: the next
# point of the original grid after now). Until then the timer is idle: it reads 0, its interval
# kept. POSIX's text reloads it when it expires (the posix profile).

def test_a_periodic_real_timer_idles_while_its_signal_is_pending():
    text = """
        sigaction(SIGALRM, handler)
        sigprocmask(SIG_BLOCK, SIGALRM)
        setitimer(ITIMER_REAL, 50, 50)
        nanosleep(120)
        sigpending()
        setitimer(ITIMER_REAL, 0)
        sigprocmask(SIG_UNBLOCK, SIGALRM)
        sigpending()
    """
    alrm = (Names(("SIGALRM",)),)
    tail = (H("SIGALRM"), Call(6, 0, alrm), Call(7, 0, (NONE,)), Exit(0))
    # One expiry (50 ms), then nothing until the signal is taken: the old value is 0.
    assert p0(text)[3:] == (Call(3, 0), Call(4, 0, alrm),
                            Call(5, 0, (TimeBound(0, 0), TimeBound(50_000, 50_000)))) + tail
    assert p0(text, POSIX)[3:] == (Call(3, 0), Call(4, 0, alrm),
                                   Call(5, 0, left(50_000, 50_000))) + tail


def test_taking_sigalrm_restarts_the_timer_on_its_grid():
    k = Kernel()
    p = k.spawn(k.spawn_driver())
    k.syscall(p, "sigaction", ("SIGALRM", "handler"))
    k.syscall(p, "sigprocmask", ("SIG_BLOCK", SigSet(("SIGALRM",))))
    k.syscall(p, "setitimer", ("ITIMER_REAL", 50, 50))
    assert k.syscall(p, "nanosleep", (120,)) is BLOCKED
    assert k.advance() and k.now == 50_000          # the expiry
    assert k.timer_left(p, "ITIMER_REAL") == (0, 50_000)
    assert k.advance() and k.now == 120_000         # no more expiries: straight to the sleep's end
    assert k.syscall(p, "nanosleep", (120,)).value == 0
    k.syscall(p, "sigprocmask", ("SIG_UNBLOCK", SigSet(("SIGALRM",))))
    frame, = k.deliver(p)
    assert frame.signal == "SIGALRM"
    # Taken at 120 ms: the next point of the 50 + 50k grid is 150 ms.
    assert k.timer_left(p, "ITIMER_REAL") == (30_000, 50_000)
    assert k.timer_bound(p, "ITIMER_REAL") == 50_000


def test_sigalrm_taken_by_sig_ign_at_delivery_restarts_the_timer():
    # Blocked, an ignored signal stays pending; unblocked, it is dequeued and then ignored.
    k = Kernel()
    p = k.spawn(k.spawn_driver())
    k.syscall(p, "sigaction", ("SIGALRM", "SIG_IGN"))
    k.syscall(p, "sigprocmask", ("SIG_BLOCK", SigSet(("SIGALRM",))))
    k.syscall(p, "setitimer", ("ITIMER_REAL", 50, 50))
    assert k.syscall(p, "nanosleep", (60,)) is BLOCKED
    assert k.advance() and k.advance() and k.now == 60_000
    assert k.syscall(p, "nanosleep", (60,)).value == 0
    assert k.timer_left(p, "ITIMER_REAL") == (0, 50_000)
    k.syscall(p, "sigprocmask", ("SIG_UNBLOCK", SigSet(("SIGALRM",))))
    assert k.deliver(p) == []
    assert k.timer_left(p, "ITIMER_REAL") == (40_000, 50_000)


def test_a_kill_sigalrm_taken_while_the_timer_idles_restarts_it():
    k = Kernel()
    p = k.spawn(k.spawn_driver())
    k.syscall(p, "sigaction", ("SIGALRM", "SIG_IGN"))
    k.syscall(p, "setitimer", ("ITIMER_REAL", 20, 50))
    assert k.syscall(p, "nanosleep", (30,)) is BLOCKED
    assert k.advance() and k.now == 30_000          # the 20 ms expiry was dropped (ignored)
    assert k.syscall(p, "nanosleep", (30,)).value == 0
    assert k.timer_left(p, "ITIMER_REAL") == (0, 50_000)
    k.syscall(p, "sigaction", ("SIGALRM", "handler"))
    k.syscall(p, "kill", (p, "SIGALRM"))
    assert [f.signal for f in k.deliver(p)] == ["SIGALRM"]
    assert k.timer_left(p, "ITIMER_REAL") == (40_000, 50_000)   # grid 20 + 50k: 70 ms


@pytest.mark.parametrize("profile, reading, alarm_left", [
    (LINUX, (TimeBound(0, 0), TimeBound(50_000, 50_000)), 0),   # dropped, never taken: idle
    (POSIX, left(50_000, 50_000), IntRange(1, 1)),              # reloaded at every expiry
])
def test_an_ignored_sigalrm_never_restarts_a_periodic_timer_on_linux(profile, reading,
                                                                     alarm_left):
    events = p0("""
        sigaction(SIGALRM, SIG_IGN)
        setitimer(ITIMER_REAL, 50, 50)
        nanosleep(120)
        getitimer(ITIMER_REAL)
        alarm(0)
    """, profile)
    assert events[3:] == (Call(3, 0, reading), Call(4, alarm_left), Exit(0))


def test_disarming_an_idle_timer_stops_the_restart():
    # setitimer(0) clears the interval (it_real_incr = 0): taking SIGALRM later restarts nothing.
    k = Kernel()
    p = k.spawn(k.spawn_driver())
    k.syscall(p, "sigaction", ("SIGALRM", "handler"))
    k.syscall(p, "sigprocmask", ("SIG_BLOCK", SigSet(("SIGALRM",))))
    k.syscall(p, "setitimer", ("ITIMER_REAL", 50, 50))
    assert k.syscall(p, "nanosleep", (60,)) is BLOCKED
    assert k.advance() and k.advance()
    k.syscall(p, "nanosleep", (60,))
    assert k.syscall(p, "setitimer", ("ITIMER_REAL", 0)).outs == (0, 50_000)
    k.syscall(p, "sigprocmask", ("SIG_UNBLOCK", SigSet(("SIGALRM",))))
    assert [f.signal for f in k.deliver(p)] == ["SIGALRM"]
    assert k.timer_left(p, "ITIMER_REAL") == (0, 0)


# -- CPU timers: one tick of slack on Linux -------------------------------------------------------

def test_linux_cpu_timer_readbacks_allow_one_tick_and_posix_none():
    assert LINUX.cpu_timer_slack_us == TICK and POSIX.cpu_timer_slack_us == 0
    text = """
        getitimer(ITIMER_VIRTUAL)
        setitimer(ITIMER_VIRTUAL, 100, 100)
        setitimer(ITIMER_PROF, 100)
        getitimer(ITIMER_VIRTUAL)
        setitimer(ITIMER_VIRTUAL, 0)
        setitimer(ITIMER_PROF, 0)
        getitimer(ITIMER_PROF)
        setitimer(ITIMER_REAL, 100)
        getitimer(ITIMER_REAL)
    """
    for profile, slack in ((LINUX, TICK), (POSIX, 0)):
        events = p0(text, profile)
        assert events == (
            Call(0, 0, OFF), Call(1, 0, OFF), Call(2, 0, OFF),
            Call(3, 0, left(100_000 + slack, 100_000)),
            Call(4, 0, left(100_000 + slack, 100_000)),
            Call(5, 0, left(100_000 + slack)),
            Call(6, 0, OFF),                                   # disarmed reads exactly 0
            Call(7, 0, OFF), Call(8, 0, left(100_000)),        # ITIMER_REAL: no slack
            Exit(0)), profile.name


def test_cpu_timer_slack_knob_widens_the_bound():
    profile = Profile(name="ticks", cpu_timer_slack_us=4000)
    events = p0("""
        setitimer(ITIMER_VIRTUAL, 20)
        getitimer(ITIMER_VIRTUAL)
        getitimer(ITIMER_REAL)
    """, profile)
    assert events[1:3] == (Call(1, 0, left(24_000)), Call(2, 0, OFF))


def test_interval_timer_counts_are_exact_with_spin():
    events = p0("""
        sigaction(SIGPROF, handler)
        setitimer(ITIMER_PROF, 10, 10)
        spin()
        spin()
        spin()
        setitimer(ITIMER_PROF, 0)
    """)
    assert events[2:] == (H("SIGPROF"), Call(2, 0), H("SIGPROF"), Call(3, 0), H("SIGPROF"),
                          Call(4, 0), Call(5, 0, left(10_000 + TICK, 10_000)), Exit(0))


def test_cpu_timers_count_only_spinning_time():
    # Asleep 100 ms: the 50 ms VIRTUAL timer does not move; spinning then fires it.
    events = p0("""
        sigaction(SIGVTALRM, handler)
        setitimer(ITIMER_VIRTUAL, 50)
        nanosleep(100)
        getitimer(ITIMER_VIRTUAL)
        spin()
    """)
    assert events[3:] == (Call(3, 0, left(50_000 + TICK)), H("SIGVTALRM"), Call(4, 0), Exit(0))


def test_spin_without_a_signal_hangs():
    out = only("""
        setitimer(ITIMER_REAL, 10)
        sigaction(SIGALRM, SIG_IGN)
        spin()
    """)
    assert out.hung and out.events(0) == (Call(0, 0, OFF), Call(1, 0, ("SIG_DFL", NONE, NONE)))


def test_an_ignored_periodic_timer_does_not_keep_a_blocked_program_busy():
    out = only("""
        sigaction(SIGALRM, SIG_IGN)
        setitimer(ITIMER_REAL, 1, 1)
        r, w = pipe()
        read(r, 1)
    """)
    assert out.hung


def test_default_sigalrm_kills_and_timers_are_not_inherited():
    out = only("""
        setitimer(ITIMER_REAL, 100)
        c = fork {
            getitimer(ITIMER_REAL)
            nanosleep(500)
        }
        waitpid(c)
    """)
    assert out.events(1) == (Call(1, 0), Call(2, 0, OFF), Call(3, 0), Exit(0))
    assert out.events(0) == (Call(0, 0, OFF), Call(1, Pid(1)))
    assert dict(out.reaped)[0].value == "SIGALRM"


# -- alarm -----------------------------------------------------------------------------------

@pytest.mark.parametrize("left_us, seconds", [
    (0, 0), (1, 1), (499_999, 1), (500_000, 1), (1_499_999, 1), (1_500_000, 2),
    (2_000_000, 2), (2_500_000, 3)])
def test_alarm_rounds_half_up_and_reports_at_least_one(left_us, seconds):
    assert alarm_seconds(left_us) == seconds


def test_alarm_returns_a_range_from_the_old_value():
    events = p0("""
        alarm(3)
        alarm(0)
        setitimer(ITIMER_REAL, 1500)
        alarm(0)
        setitimer(ITIMER_REAL, 1499, 100)
        alarm(5)
        getitimer(ITIMER_REAL)
        setitimer(ITIMER_REAL, 400)
        alarm(0)
    """)
    assert events == (
        Call(0, 0), Call(1, IntRange(1, 3)),
        Call(2, 0, OFF), Call(3, IntRange(1, 2)),
        Call(4, 0, OFF), Call(5, IntRange(1, 1)),
        Call(6, 0, left(5_000_000)),                   # alarm sets no interval
        Call(7, 0, left(5_000_000)), Call(8, IntRange(1, 1)), Exit(0))


def test_alarm_wakes_a_sigsuspend():
    events = p0("""
        sigaction(SIGALRM, handler, SA_SIGINFO)
        sigprocmask(SIG_BLOCK, SIGALRM)
        alarm(1)
        sigsuspend(0)
        alarm(0)
    """)
    assert events[3:] == (
        Handler("SIGALRM", 1, False, True, Names(("SS_DISABLE",)), 0,
                ("SIGALRM", "SI_KERNEL", 0)),
        Call(3, EINTR), Call(4, 0), Exit(0))


# -- nanosleep -------------------------------------------------------------------------------

def test_nanosleep_eintr_reports_the_time_left_within_the_request():
    events = p0("""
        sigaction(SIGALRM, handler, SA_RESTART)
        alarm(1)
        nanosleep(2500)
        nanosleep(100)
    """)
    # Never restarted, even with SA_RESTART; the time left is at most what was asked.
    assert events[2:] == (H("SIGALRM"), Call(2, EINTR, (TimeBound(0, 2_500_000),)),
                          Call(3, 0), Exit(0))


def test_a_stopped_sleep_restarts_with_its_first_deadline():
    k = Kernel()
    p = k.spawn(k.spawn_driver())
    q = k.syscall(p, "fork", ()).value
    assert k.syscall(p, "nanosleep", (100,)) is BLOCKED
    assert k.syscall(q, "nanosleep", (200,)) is BLOCKED
    k.send_signal(p, "SIGSTOP")
    assert k.syscall(p, "nanosleep", (100,)) is BLOCKED and k.runnable(p)   # interrupted
    k.deliver(p)
    assert k.state(p) == "stopped"
    assert k.advance()             # a stopped sleeper's end is no event: straight to q's
    assert k.now == 200_000 and k.state(p) == "stopped" and k.runnable(q)
    k.send_signal(p, "SIGCONT")
    assert k.deliver(p) == []
    assert k.syscall(p, "nanosleep", (100,)).value == 0                    # its end has passed
    assert not k.advance()         # nothing left to wait for


# -- poll / ppoll ----------------------------------------------------------------------------

def test_poll_revents():
    events = p0("""
        r, w = pipe()
        poll([r:POLLIN, w:POLLOUT, 99:POLLIN, -1:POLLIN], 0)
        write(w, "x")
        poll([r:POLLIN|POLLOUT, w:POLLIN], 0)
        close(w)
        poll([r:POLLIN], 0)
        poll([r:POLLPRI], 0)
        a, b = pipe()
        close(a)
        poll([b:POLLOUT], 0)
        poll([b:POLLIN], 0)
        poll([a:POLLIN], 0)
    """)
    names = lambda *n: Names(n)  # noqa: E731
    assert events[1] == Call(1, 2, (NONE, names("POLLOUT"), names("POLLNVAL"), NONE))
    assert events[3] == Call(3, 1, (names("POLLIN"), NONE))   # only requested events
    assert events[5] == Call(5, 1, (names("POLLIN", "POLLHUP"),))
    assert events[6] == Call(6, 1, (names("POLLHUP"),))       # POLLHUP even unrequested
    assert events[9:12] == (Call(9, 1, (names("POLLOUT", "POLLERR"),)),
                            Call(10, 1, (names("POLLERR"),)),
                            Call(11, 1, (names("POLLNVAL"),)))


def test_poll_reports_pollout_only_while_a_slot_is_free():
    k = Kernel()
    p = k.spawn(k.spawn_driver())
    k.syscall(p, "pipe2", (Flags(("O_NONBLOCK",)),))
    for _ in range(16):
        k.syscall(p, "write", (4, b"x" * 4096))
    out = PollFd(4, Flags(("POLLOUT",)))
    assert k.syscall(p, "poll", ((out,), 0)).outs == ((),)
    k.syscall(p, "read", (3, 4096))
    assert k.syscall(p, "poll", ((out,), 0)).outs == (("POLLOUT",),)


def test_poll_timeouts():
    events = p0("""
        r, w = pipe()
        setitimer(ITIMER_REAL, 1000)
        poll([r:POLLIN], 0)
        poll([r:POLLIN], 300)
        getitimer(ITIMER_REAL)
        poll([], 200)
        getitimer(ITIMER_REAL)
    """)
    assert events[2:7] == (Call(2, 0, (NONE,)), Call(3, 0, (NONE,)), Call(4, 0, left(700_000)),
                           Call(5, 0), Call(6, 0, left(500_000)))


def test_poll_woken_by_data_from_another_process():
    out = only("""
        r, w = pipe()
        c = fork {
            nanosleep(50)
            write(w, "x")
        }
        poll([r:POLLIN], 1000)
        waitpid(c)
    """)
    assert out.events(0)[2] == Call(4, 1, (Names(("POLLIN",)),))


@pytest.mark.parametrize("timeout", [-1, 500])
def test_a_handler_interrupts_poll_even_with_sa_restart(timeout):
    events = p0(f"""
        sigaction(SIGALRM, handler, SA_RESTART)
        r, w = pipe()
        setitimer(ITIMER_REAL, 100)
        poll([r:POLLIN], {timeout})
    """)
    assert events[3:] == (H("SIGALRM"), Call(3, EINTR), Exit(0))


def test_ppoll_mask_applies_only_while_waiting():
    events = p0("""
        sigaction(SIGUSR1, handler)
        sigprocmask(SIG_BLOCK, SIGUSR1)
        kill(self, SIGUSR1)
        r, w = pipe()
        write(w, "x")
        ppoll([r:POLLIN], 0, 0)
        ppoll([r:POLLOUT], 0, 0)
        sigprocmask(SIG_BLOCK, 0)
        ppoll([r:POLLOUT], 0)
    """)
    # Something is ready: ppoll returns and puts the old mask back, SIGUSR1 stays pending.
    assert events[5] == Call(5, 1, (Names(("POLLIN",)),))
    # Nothing is ready and the mask unblocks SIGUSR1: EINTR even with timeout 0; the handler
    # runs under the ppoll mask, then the old mask is back.
    assert events[6:] == (H("SIGUSR1"), Call(6, EINTR), Call(7, 0, (Names(("SIGUSR1",)),)),
                          Call(8, 0, (NONE,)), Exit(0))


def test_ppoll_mask_blocks_a_timer_signal_while_waiting():
    events = p0("""
        sigaction(SIGALRM, handler)
        r, w = pipe()
        setitimer(ITIMER_REAL, 100)
        ppoll([r:POLLIN], 300, SIGALRM)
        sigpending()
    """)
    # SIGALRM stays pending through the wait; the old mask unblocks it on return.
    assert events[3:] == (H("SIGALRM"), Call(3, 0, (NONE,)), Call(4, 0, (NONE,)), Exit(0))
