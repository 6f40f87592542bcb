"""Handlers, masks, dispositions, SIGCHLD, groups and the alternate stack, in predict() and at
syscall level. Every expectation is worked out by hand from Linux's kernel/signal.c,
arch/x86/kernel/signal.c and kernel/exit.c, and from POSIX (op indexes: pre-order)."""
from __future__ import annotations

import textwrap

import pytest

from conformance.events import (
    AltStack, Call, Changed, Errno, Exit, Handler, Names, Pid, TimeBound, WaitStatus,
)
from conformance.ir import Flags, SigSet, StackSize
from conformance.syntax import parse
from oracle import BLOCKED, LINUX, POSIX, Kernel, Profile, SigInfo, Stack, predict

NONE = Names(())
DISABLE = Names(("SS_DISABLE",))
EINTR = Errno("EINTR")
DFL0 = ("SIG_DFL", NONE, NONE)  # sigaction's old action when there was none
EXITED0 = WaitStatus("exited", 0)
ZERO_TIMER = (TimeBound(0, 0), TimeBound(0, 0))  # setitimer's old value: never armed


def H(sig, depth=1, alt=False, ss=DISABLE, change=0, info=None) -> Handler:
    """The recording handler's event."""
    return Handler(sig, depth, alt, True, ss, change, info)


def outcomes(text: str, profile=LINUX):
    return predict(parse(textwrap.dedent(text)), profile).outcomes


def only(text: str, profile=LINUX):
    found = outcomes(text, profile)
    assert len(found) == 1, found
    return found[0]


def p0(text: str, profile=LINUX) -> tuple:
    return only(text, profile).events(0)


def boot(profile=LINUX):
    k = Kernel(profile)
    return k, k.spawn(k.spawn_driver())


def val(k, pid, name, *args):
    return k.syscall(pid, name, args).value


# -- order of handlers -----------------------------------------------------------------------

TWO_PENDING = """
    sigaction(SIGUSR1, handler, 0, {mask})
    sigaction(SIGUSR2, handler)
    sigprocmask(SIG_BLOCK, SIGUSR1|SIGUSR2)
    kill(self, SIGUSR1)
    kill(self, SIGUSR2)
    sigprocmask(SIG_SETMASK, 0)
"""


def test_two_unmasked_handlers_run_highest_number_first():
    # Both frames are set up before either runs; the one set up last (SIGUSR2) runs first.
    events = p0(TWO_PENDING.format(mask="0"))
    assert events[5:] == (H("SIGUSR2"), H("SIGUSR1"),
                          Call(5, 0, (Names(("SIGUSR1", "SIGUSR2")),)), Exit(0))


def test_a_mask_on_the_first_handler_makes_them_run_in_turn():
    # SIGUSR1's frame blocks SIGUSR2, so SIGUSR2 waits for SIGUSR1's sigreturn.
    events = p0(TWO_PENDING.format(mask="SIGUSR2"))
    assert events[5:7] == (H("SIGUSR1"), H("SIGUSR2"))


def test_posix_allows_either_order():
    firsts = {o.events(0)[5].signal for o in outcomes(TWO_PENDING.format(mask="0"), POSIX)}
    assert firsts == {"SIGUSR1", "SIGUSR2"}


def test_iterative_frames_at_syscall_level():
    k, p = boot()
    for sig in ("SIGUSR1", "SIGUSR2"):
        val(k, p, "sigaction", sig, "handler")
    val(k, p, "sigprocmask", "SIG_BLOCK", SigSet(("SIGUSR1", "SIGUSR2")))
    val(k, p, "kill", p, "SIGUSR1")
    val(k, p, "kill", p, "SIGUSR2")
    assert k.deliver(p) == []
    assert val(k, p, "sigprocmask", "SIG_SETMASK", SigSet()) == 0
    first, second = k.deliver(p)
    assert (first.signal, second.signal) == ("SIGUSR1", "SIGUSR2")
    assert first.info == SigInfo("SIGUSR1", "SI_USER", p)
    assert first.restore_mask == frozenset()
    assert second.restore_mask == {"SIGUSR1"}
    assert (first.started, second.started) == (False, True)
    assert k.handler_depth(p) == 1
    val(k, p, "rt_sigreturn")
    assert k.procs[p].blocked == {"SIGUSR1"}
    assert k.deliver(p) == [] and first.started and k.handler_depth(p) == 1
    val(k, p, "rt_sigreturn")
    assert k.procs[p].blocked == frozenset()
    with pytest.raises(RuntimeError, match="outside a handler"):
        k.syscall(p, "rt_sigreturn", ())


# -- the thread's queue and the process's queue ------------------------------------------------
# Linux keeps two queues: task->pending for thread-directed signals (send_sig: write's SIGPIPE,
# faults) and signal->shared_pending for process-directed ones (kill, ITIMER_REAL/VIRTUAL/PROF,
# SIGCHLD: PIDTYPE_TGID). dequeue_signal takes from the thread's queue first (next_signal:
# synchronous signals, then the lowest number) and only then from the process's. A standard
# signal is pending at most once per queue (legacy_queue looks at the target queue only).

SIGPIPE_AND = """
    sigaction(SIGPIPE, handler)
    sigaction({other}, handler)
    sigprocmask(SIG_BLOCK, SIGPIPE|{other})
    r, w = pipe()
    close(r)
    write(w, "x")
    kill(self, {other})
    sigpending()
    sigprocmask(SIG_UNBLOCK, SIGPIPE|{other})
"""


@pytest.mark.parametrize("other", ["SIGUSR2", "SIGSEGV"])
def test_a_thread_queued_sigpipe_is_taken_before_process_wide_signals(other):
    # SIGPIPE (13) is taken first although SIGUSR2 (12) is lower and SIGSEGV is synchronous:
    # its frame is set up first, so the other handler, set up on top, runs (records) first.
    both = Names(tuple(sorted(("SIGPIPE", other), key=("SIGSEGV", "SIGUSR2", "SIGPIPE").index)))
    events = p0(SIGPIPE_AND.format(other=other))
    assert events[5:] == (Call(5, Errno("EPIPE")), Call(6, 0), Call(7, 0, (both,)),
                          H(other), H("SIGPIPE"), Call(8, 0, (both,)), Exit(0))


def test_posix_takes_the_two_queues_in_either_order():
    firsts = {o.events(0)[8].signal for o in outcomes(SIGPIPE_AND.format(other="SIGUSR2"), POSIX)}
    assert firsts == {"SIGUSR2", "SIGPIPE"}


def test_frames_are_set_up_thread_queue_first_at_syscall_level():
    k, p = boot()
    for sig in ("SIGPIPE", "SIGUSR2"):
        val(k, p, "sigaction", sig, "handler")
    val(k, p, "sigprocmask", "SIG_BLOCK", SigSet(("SIGPIPE", "SIGUSR2")))
    r, w = k.syscall(p, "pipe", ()).outs
    val(k, p, "close", r)
    assert val(k, p, "write", w, b"x") == Errno("EPIPE")
    val(k, p, "kill", p, "SIGUSR2")
    proc = k.procs[p]
    assert [s for s, _ in proc.pending] == ["SIGPIPE"]          # the thread's queue
    assert [s for s, _ in proc.shared_pending] == ["SIGUSR2"]   # the process's queue
    val(k, p, "sigprocmask", "SIG_SETMASK", SigSet())
    first, second = k.deliver(p)
    assert (first.signal, second.signal) == ("SIGPIPE", "SIGUSR2")
    assert first.info == SigInfo("SIGPIPE", "SI_USER", p)


def test_a_standard_signal_can_be_pending_once_in_each_queue():
    # write's SIGPIPE on the thread, kill's on the process: sigpending shows one, both run.
    # The first frame blocks SIGPIPE, so the second instance waits for its sigreturn (depth 1).
    events = p0("""
        sigaction(SIGPIPE, handler)
        sigprocmask(SIG_BLOCK, SIGPIPE)
        r, w = pipe()
        close(r)
        write(w, "x")
        kill(self, SIGPIPE)
        write(w, "y")
        sigpending()
        sigprocmask(SIG_UNBLOCK, SIGPIPE)
        sigpending()
    """)
    assert events[7:] == (Call(7, 0, (Names(("SIGPIPE",)),)), H("SIGPIPE"), H("SIGPIPE"),
                          Call(8, 0, (Names(("SIGPIPE",)),)), Call(9, 0, (NONE,)), Exit(0))


def test_sig_ign_discards_an_instance_in_either_queue():
    events = p0("""
        sigaction(SIGPIPE, handler)
        sigprocmask(SIG_BLOCK, SIGPIPE)
        r, w = pipe()
        close(r)
        write(w, "x")
        kill(self, SIGPIPE)
        sigaction(SIGPIPE, SIG_IGN)
        sigpending()
        sigaction(SIGPIPE, handler)
        sigprocmask(SIG_UNBLOCK, SIGPIPE)
    """)
    assert events[7:] == (Call(7, 0, (NONE,)), Call(8, 0, ("SIG_IGN", NONE, NONE)),
                          Call(9, 0, (Names(("SIGPIPE",)),)), Exit(0))


def test_timer_and_kill_signals_share_the_process_queue():
    # ITIMER_REAL's SIGALRM is process-directed: a kill(SIGALRM) while it is pending coalesces.
    k, p = boot()
    val(k, p, "sigaction", "SIGALRM", "handler")
    val(k, p, "sigprocmask", "SIG_BLOCK", SigSet(("SIGALRM",)))
    val(k, p, "setitimer", "ITIMER_REAL", 10)
    assert k.syscall(p, "nanosleep", (20,)) is BLOCKED
    assert k.advance() and k.now == 10_000
    assert [s for s, _ in k.procs[p].shared_pending] == ["SIGALRM"]
    assert k.procs[p].pending == []
    assert k.advance() and val(k, p, "nanosleep", 20) == 0
    val(k, p, "kill", p, "SIGALRM")
    assert [s for s, _ in k.procs[p].shared_pending] == ["SIGALRM"]
    for which, sig in (("ITIMER_VIRTUAL", "SIGVTALRM"), ("ITIMER_PROF", "SIGPROF")):
        k2, q = boot()
        val(k2, q, "sigaction", sig, "handler")
        val(k2, q, "sigprocmask", "SIG_BLOCK", SigSet((sig,)))
        val(k2, q, "setitimer", which, 10)
        assert k2.syscall(q, "spin", ()) is BLOCKED
        assert k2.advance()
        assert [s for s, _ in k2.procs[q].shared_pending] == [sig]
        assert k2.procs[q].pending == []


def test_sigchld_is_process_directed():
    k, p = boot()
    val(k, p, "sigprocmask", "SIG_BLOCK", SigSet(("SIGCHLD",)))
    c = val(k, p, "fork")
    k.exit_process(c, 0)
    assert [s for s, _ in k.procs[p].shared_pending] == ["SIGCHLD"]
    assert k.procs[p].pending == []


# -- nesting, SA_NODEFER, SA_RESETHAND --------------------------------------------------------

@pytest.mark.parametrize("flags, nested", [(Flags(("SA_NODEFER",)), True), (Flags(), False)])
def test_a_signal_arriving_during_its_own_handler(flags, nested):
    k, p = boot()
    val(k, p, "sigaction", "SIGUSR1", "handler", flags)
    val(k, p, "kill", p, "SIGUSR1")
    (outer,) = k.deliver(p)
    k.syscall(p, "sigaltstack", (None,))   # the handler's first call
    k.send_signal(p, "SIGUSR1")            # another instance arrives meanwhile
    inner = k.deliver(p)
    if nested:  # not blocked during its handler: a frame on top, depth 2
        assert len(inner) == 1 and k.handler_depth(p) == 2
        val(k, p, "rt_sigreturn")
        assert k.deliver(p) == [] and k.handler_depth(p) == 1
        val(k, p, "rt_sigreturn")
    else:  # blocked until the handler returns, then a new depth-1 invocation
        assert inner == [] and k.handler_depth(p) == 1
        val(k, p, "rt_sigreturn")
        assert len(k.deliver(p)) == 1 and k.handler_depth(p) == 1


def test_nested_handler_records_before_the_outer_one():
    # A realtime signal queues twice. When the child's second kill lands while the parent's
    # handler runs (round robin), an SA_NODEFER handler nests at depth 2 and records first.
    text = """
        sigaction(40, handler, {flags})
        r, w = pipe()
        c = fork {{
            kill(parent, 40)
            kill(parent, 40)
            close(w)
        }}
        close(w)
        read(r, 1)
        waitpid(c)
    """
    def depths(flags):
        return {tuple(e.depth for e in o.events(0) if isinstance(e, Handler))
                for o in outcomes(text.format(flags=flags))}
    assert (2, 1) in depths("SA_NODEFER|SA_RESTART")
    assert depths("SA_RESTART") == {(1, 1)}


def test_resethand_resets_the_handler_and_keeps_the_flags():
    events = p0("""
        sigaction(SIGUSR1, handler, SA_SIGINFO|SA_RESETHAND)
        kill(self, SIGUSR1)
        sigaction(SIGUSR1, handler)
    """)
    assert events == (
        Call(0, 0, DFL0), H("SIGUSR1", info=("SIGUSR1", "SI_USER", Pid(0))), Call(1, 0),
        Call(2, 0, ("SIG_DFL", Names(("SA_SIGINFO", "SA_RESETHAND")), NONE)), Exit(0))


def test_posix_resethand_clears_sa_siginfo():
    events = p0("""
        sigaction(SIGUSR1, handler, SA_SIGINFO|SA_RESETHAND)
        kill(self, SIGUSR1)
        sigaction(SIGUSR1, handler)
    """, POSIX)
    assert events[3] == Call(2, 0, ("SIG_DFL", Names(("SA_RESETHAND",)), NONE))


def test_after_resethand_the_default_action_kills():
    out = only("""
        sigaction(SIGUSR1, handler, SA_RESETHAND)
        kill(self, SIGUSR1)
        kill(self, SIGUSR1)
        getpid()
    """)
    assert out.events(0) == (Call(0, 0, DFL0), H("SIGUSR1"), Call(1, 0))
    assert out.reaped == ((0, WaitStatus("killed", "SIGUSR1")),)


# -- restart and EINTR -----------------------------------------------------------------------

TIMED_READ = """
    sigaction(SIGALRM, handler, {flags})
    r, w = pipe()
    c = fork {{
        nanosleep(200)
        write(w, "x")
    }}
    setitimer(ITIMER_REAL, 100)
    {call}
"""


def test_timer_signal_interrupts_a_read_with_eintr():
    out = only(TIMED_READ.format(flags="0", call="read(r, 1)"))
    assert out.events(0)[3:] == (Call(5, 0, ZERO_TIMER), H("SIGALRM"),
                                 Call(6, EINTR), Exit(0))
    # The child still writes: it holds the read end too.
    assert out.events(1) == (Call(2, 0), Call(3, 0), Call(4, 1), Exit(0))
    assert out.reaped == ((0, EXITED0), (1, EXITED0))


def test_sa_restart_restarts_the_read():
    out = only(TIMED_READ.format(flags="SA_RESTART", call="read(r, 1)"))
    assert out.events(0)[4:] == (H("SIGALRM"), Call(6, 1, data=b"x"), Exit(0))


@pytest.mark.parametrize("flags, result", [
    ("SA_RESTART", Call(6, Pid(1), (EXITED0,))), ("0", Call(6, EINTR))])
def test_waitpid_is_restarted_only_with_sa_restart(flags, result):
    out = only(TIMED_READ.format(flags=flags, call="waitpid(c)"))
    assert out.events(0)[4:6] == (H("SIGALRM"), result)


def test_stop_and_continue_restart_sigsuspend_at_syscall_level():
    k, p = boot()
    val(k, p, "sigaction", "SIGUSR1", "handler")
    assert k.syscall(p, "sigsuspend", (SigSet(("SIGTERM",)),)) is BLOCKED
    k.send_signal(p, "SIGSTOP")
    k.syscall(p, "sigsuspend", (SigSet(("SIGTERM",)),))    # interrupted
    k.deliver(p)
    assert k.state(p) == "stopped"
    k.send_signal(p, "SIGCONT")
    assert k.deliver(p) == []                               # no handler: restart
    assert k.procs[p].blocked == frozenset()                # old mask back meanwhile
    k.syscall(p, "sigsuspend", (SigSet(("SIGTERM",)),))
    assert k.state(p) == "blocked" and k.procs[p].blocked == {"SIGTERM"}


# -- masks, pending, dispositions ------------------------------------------------------------

def test_sigsuspend_mask_holds_during_the_handler_and_the_old_one_comes_back():
    k, p = boot()
    val(k, p, "sigaction", "SIGUSR1", "handler")
    val(k, p, "sigprocmask", "SIG_BLOCK", SigSet(("SIGUSR1", "SIGUSR2")))
    val(k, p, "kill", p, "SIGUSR1")
    k.deliver(p)
    k.syscall(p, "sigsuspend", (SigSet(("SIGTERM",)),))     # unblocks SIGUSR1: interrupted
    (frame,) = k.deliver(p)
    assert k.procs[p].blocked == {"SIGTERM", "SIGUSR1"}       # suspend mask + the signal
    assert frame.restore_mask == {"SIGUSR1", "SIGUSR2"}
    val(k, p, "rt_sigreturn")
    k.deliver(p)
    assert k.syscall(p, "sigsuspend", (SigSet(("SIGTERM",)),)).value == EINTR
    events = p0("""
        sigaction(SIGUSR1, handler)
        sigprocmask(SIG_BLOCK, SIGUSR1|SIGUSR2)
        kill(self, SIGUSR1)
        sigsuspend(SIGTERM)
        sigprocmask(SIG_BLOCK, 0)
    """)
    assert events[3:] == (H("SIGUSR1"), Call(3, EINTR),
                          Call(4, 0, (Names(("SIGUSR1", "SIGUSR2")),)), Exit(0))


def test_unblocking_delivers_before_the_record():
    events = p0("""
        sigaction(SIGUSR1, handler)
        sigprocmask(SIG_BLOCK, SIGUSR1)
        kill(self, SIGUSR1)
        sigprocmask(SIG_UNBLOCK, SIGUSR1)
    """)
    assert events == (Call(0, 0, DFL0), Call(1, 0, (NONE,)), Call(2, 0), H("SIGUSR1"),
                      Call(3, 0, (Names(("SIGUSR1",)),)), Exit(0))


def test_sigpending_lists_pending_blocked_signals_in_number_order():
    events = p0("""
        sigprocmask(SIG_BLOCK, SIGCHLD|SIGTERM|SIGUSR1|40)
        kill(self, SIGCHLD)
        kill(self, 40)
        kill(self, SIGTERM)
        kill(self, SIGUSR1)
        sigpending()
        sigprocmask(SIG_UNBLOCK, SIGCHLD)
        sigpending()
    """)
    # Blocked signals are kept even when their action ignores them (SIGCHLD)...
    assert events[5] == Call(5, 0, (Names(("SIGUSR1", "SIGTERM", "SIGCHLD", 40)),))
    # ...and discarded once unblocked.
    assert events[7] == Call(7, 0, (Names(("SIGUSR1", "SIGTERM", 40)),))


def test_sigkill_and_sigstop_are_never_blocked():
    events = p0("""
        sigprocmask(SIG_BLOCK, SIGKILL|SIGSTOP|SIGUSR1)
        sigprocmask(SIG_BLOCK, 0)
        sigprocmask(7, SIGUSR1)
    """)
    assert events[1:3] == (Call(1, 0, (Names(("SIGUSR1",)),)), Call(2, Errno("EINVAL")))


def test_sig_ign_discards_a_pending_signal_even_if_blocked():
    events = p0("""
        sigprocmask(SIG_BLOCK, SIGUSR1)
        kill(self, SIGUSR1)
        sigaction(SIGUSR1, SIG_IGN)
        sigpending()
        kill(self, SIGUSR1)
        sigpending()
        sigaction(SIGUSR1, SIG_IGN)
        sigprocmask(SIG_UNBLOCK, SIGUSR1)
        sigpending()
    """)
    assert events[3] == Call(3, 0, (NONE,))
    assert events[5] == Call(5, 0, (Names(("SIGUSR1",)),))   # blocked: queued though ignored
    assert events[6:] == (Call(6, 0, ("SIG_IGN", NONE, NONE)), Call(7, 0, (Names(("SIGUSR1",)),)),
                          Call(8, 0, (NONE,)), Exit(0))


def test_sigaction_validation_and_readback():
    events = p0("""
        sigaction(SIGKILL, SIG_IGN)
        sigaction(SIGSTOP, SIG_DFL)
        sigaction(0, handler)
        sigaction(65, handler)
        sigaction(SIGUSR1, handler, SA_RESTART|SA_ONSTACK|0x1, SIGKILL|SIGUSR2|40)
        sigaction(SIGUSR1, SIG_DFL)
    """)
    assert events[:4] == tuple(Call(i, Errno("EINVAL")) for i in range(4))
    assert events[5] == Call(5, 0, ("handler", Names(("SA_ONSTACK", "SA_RESTART")),
                                    Names(("SIGUSR2", 40))))


def test_sigpipe_handler_sees_the_writer():
    events = p0("""
        sigaction(SIGPIPE, handler, SA_SIGINFO)
        r, w = pipe()
        close(r)
        write(w, "x")
    """)
    assert events[3:] == (H("SIGPIPE", info=("SIGPIPE", "SI_USER", Pid(0))),
                          Call(3, Errno("EPIPE")), Exit(0))


def test_probe_appends_registers_intact_whatever_the_result():
    events = p0("""
        probe getpid()
        probe close(99)
        probe r, w = pipe2(0x1000)
    """)
    assert events[:3] == (Call(0, Pid(0), (Changed(()),)), Call(1, Errno("EBADF"), (Changed(()),)),
                          Call(2, Errno("EINVAL"), (-1, -1, Changed(()))))


# -- SIGCHLD ---------------------------------------------------------------------------------

def _infos(out, lpid=0) -> list:
    return [e.info for e in out.events(lpid) if isinstance(e, Handler)]


def test_sigchld_codes_for_stop_continue_and_exit():
    out = only("""
        sigaction(SIGCHLD, handler, SA_SIGINFO)
        sigprocmask(SIG_BLOCK, SIGCHLD)
        r, w = pipe()
        c = fork {
            kill(self, SIGSTOP)
            read(r, 1)
        }
        sigsuspend(0)
        kill(c, SIGCONT)
        sigsuspend(0)
        write(w, "x")
        sigsuspend(0)
        waitpid(c)
    """)
    child = Pid(1)
    assert _infos(out) == [("SIGCHLD", code, child)
                           for code in ("CLD_STOPPED", "CLD_CONTINUED", "CLD_EXITED")]
    assert out.events(1) == (Call(3, 0), Call(4, 0), Call(5, 1, data=b"x"), Exit(0))


def test_sa_nocldstop_leaves_only_the_exit():
    out = only("""
        sigaction(SIGCHLD, handler, SA_SIGINFO|SA_NOCLDSTOP)
        sigprocmask(SIG_BLOCK, SIGCHLD)
        c = fork {
            kill(self, SIGSTOP)
        }
        waitpid(c, WUNTRACED)
        kill(c, SIGCONT)
        sigsuspend(0)
        waitpid(c)
    """)
    assert out.events(0)[3] == Call(4, Pid(1), (WaitStatus("stopped", "SIGSTOP"),))
    assert _infos(out) == [("SIGCHLD", "CLD_EXITED", Pid(1))]


KILLED_CHILD = """
    sigaction(SIGCHLD, handler, SA_SIGINFO)
    sigprocmask(SIG_BLOCK, SIGCHLD)
    c = fork {{
        kill(self, {sig})
    }}
    sigsuspend(0)
    waitpid(c)
"""


@pytest.mark.parametrize("sig, profile, codes", [
    ("SIGTERM", LINUX, {"CLD_KILLED"}),
    ("SIGQUIT", Profile(name="cores", core_flag=True), {"CLD_DUMPED"}),
    ("SIGQUIT", Profile(name="nocores", core_flag=False), {"CLD_KILLED"}),
    ("SIGQUIT", LINUX, {"CLD_KILLED", "CLD_DUMPED"}),  # the host's core settings decide
])
def test_sigchld_codes_for_deaths(sig, profile, codes):
    found = outcomes(KILLED_CHILD.format(sig=sig), profile)
    assert {_infos(o)[0][1] for o in found} == codes
    assert all(_infos(o)[0][2] == Pid(1) for o in found)


def test_ignoring_sigchld_reaps_children_at_once():
    out = only("""
        sigaction(SIGCHLD, SIG_IGN)
        c = fork {
            exit(3)
        }
        waitpid(-1)
        kill(c, 0)
    """)
    # wait blocks until the child is gone, then finds no child at all.
    assert out.events(0) == (Call(0, 0, DFL0), Call(1, Pid(1)), Call(3, Errno("ECHILD")),
                             Call(4, Errno("ESRCH")), Exit(0))
    assert out.reaped == ((0, EXITED0),)                    # the driver never sees p1


# -- process groups --------------------------------------------------------------------------

def test_kill_zero_and_kill_group_at_syscall_level():
    k, p = boot()
    a = val(k, p, "fork")
    b = val(k, p, "fork")
    assert val(k, p, "setpgid", b, 0) == 0                  # b leads its own group
    assert val(k, p, "getpgid", b) == b and val(k, b, "getpgrp") == b
    for q in (p, a, b):
        val(k, q, "sigaction", "SIGUSR1", "handler")
    assert val(k, a, "kill", 0, "SIGUSR1") == 0             # a's group: p and a
    assert [e[0] for e in k.procs[p].queued()] == ["SIGUSR1"]
    assert [e[0] for e in k.procs[a].queued()] == ["SIGUSR1"]
    assert k.procs[b].queued() == []
    assert val(k, p, "kill", -a, 0) == Errno("ESRCH")       # no group a
    assert val(k, p, "kill", -a, 65) == Errno("ESRCH")      # lookup before the signal check
    assert val(k, p, "kill", -b, 65) == Errno("EINVAL")
    assert val(k, p, "kill", -b, "SIGTERM") == 0
    k.deliver(b)
    assert k.status(b) == WaitStatus("killed", "SIGTERM", False)
    assert val(k, p, "kill", -b, 0) == 0                    # a zombie still is in its group


def test_setpgid_errors():
    k, p = boot()
    a = val(k, p, "fork")
    b = val(k, p, "fork")
    g = val(k, a, "fork")
    assert val(k, a, "setpgid", p, 0) == Errno("ESRCH")     # the parent
    assert val(k, a, "setpgid", b, 0) == Errno("ESRCH")     # a sibling
    assert val(k, p, "setpgid", g, 0) == Errno("ESRCH")     # a grandchild
    assert val(k, p, "setpgid", a, b) == Errno("EPERM")     # no group b yet
    assert val(k, p, "setpgid", b, 0) == 0
    assert val(k, p, "setpgid", a, b) == 0                  # now there is
    assert val(k, a, "getpgrp") == b
    k.exit_process(g, 0)
    assert val(k, a, "setpgid", g, 0) == 0                  # Linux finds zombie children too
    val(k, a, "waitpid", g)
    assert val(k, a, "setpgid", g, 0) == Errno("ESRCH")
    assert val(k, p, "getpgid", g) == Errno("ESRCH")


def test_group_calls_in_a_program():
    out = only("""
        r, w = pipe()
        c = fork {
            read(r, 1)
            getpgrp()
        }
        setpgid(c, 0)
        getpgid(c)
        setpgid(c, self)
        setpgid(self, c)
        write(w, "x")
        waitpid(c)
        getpgid(c)
    """)
    assert out.events(0)[2:] == (
        Call(4, 0), Call(5, Pid(1)), Call(6, 0), Call(7, Errno("EPERM")), Call(8, 1),
        Call(9, Pid(1), (EXITED0,)), Call(10, Errno("ESRCH")), Exit(0))
    assert out.events(1) == (Call(1, 0), Call(2, 1, data=b"x"), Call(3, Pid(0)), Exit(0))


def test_kill_zero_reaches_the_caller_first():
    assert p0("""
        sigaction(SIGUSR1, handler, SA_SIGINFO)
        kill(0, SIGUSR1)
    """)[1:3] == (H("SIGUSR1", info=("SIGUSR1", "SI_USER", Pid(0))), Call(1, 0))


# -- alternate stack -------------------------------------------------------------------------

def test_sigaltstack_errors_and_readback():
    region = lambda flags, size: AltStack("region", Names(flags), size)  # noqa: E731
    off = AltStack(0, DISABLE, 0)
    events = p0("""
        sigaltstack()
        sigaltstack(MINSIGSTKSZ-1)
        sigaltstack(100)
        sigaltstack(100, SS_DISABLE)
        sigaltstack(100, SS_ONSTACK|SS_DISABLE)
        sigaltstack(SIGSTKSZ, 0x1000)
        sigaltstack(SIGSTKSZ, SS_ONSTACK)
        sigaltstack(MINSIGSTKSZ, SS_AUTODISARM)
        sigaltstack()
        sigaltstack(0, SS_DISABLE)
        sigaltstack()
    """)
    assert events == (
        Call(0, 0, (off,)), Call(1, Errno("ENOMEM")), Call(2, Errno("ENOMEM")),
        Call(3, 0, (off,)),                                   # disabling needs no size
        Call(4, Errno("EINVAL")), Call(5, Errno("EINVAL")),   # EINVAL before ENOMEM
        Call(6, 0, (off,)),
        Call(7, 0, (region((), StackSize("SIGSTKSZ")),)),     # SS_ONSTACK is not kept
        Call(8, 0, (region(("SS_AUTODISARM",), StackSize("MINSIGSTKSZ")),)),
        Call(9, 0, (region(("SS_AUTODISARM",), StackSize("MINSIGSTKSZ")),)),
        Call(10, 0, (off,)), Exit(0))


def test_handlers_on_and_off_the_alternate_stack():
    events = p0("""
        sigaltstack(SIGSTKSZ)
        sigaction(SIGUSR1, handler, SA_ONSTACK)
        sigaction(SIGUSR2, handler)
        kill(self, SIGUSR1)
        kill(self, SIGUSR2)
    """)
    onstack = Names(("SS_ONSTACK",))
    assert events[3:5] == (H("SIGUSR1", alt=True, ss=onstack, change=Errno("EPERM")), Call(3, 0))
    assert events[5:7] == (H("SIGUSR2", ss=NONE), Call(4, 0))


def test_a_frame_set_up_on_top_of_an_altstack_frame_is_on_it_too():
    # SIGUSR1's frame moves the stack pointer into the region; SIGUSR2's frame (no SA_ONSTACK)
    # goes below it, still in the region, and runs first.
    events = p0("""
        sigaltstack(SIGSTKSZ)
        sigaction(SIGUSR1, handler, SA_ONSTACK)
        sigaction(SIGUSR2, handler)
        sigprocmask(SIG_BLOCK, SIGUSR1|SIGUSR2)
        kill(self, SIGUSR1)
        kill(self, SIGUSR2)
        sigprocmask(SIG_SETMASK, 0)
    """)
    on = dict(alt=True, ss=Names(("SS_ONSTACK",)), change=Errno("EPERM"))
    assert events[6:9] == (H("SIGUSR2", **on), H("SIGUSR1", **on),
                          Call(6, 0, (Names(("SIGUSR1", "SIGUSR2")),)))


def test_autodisarm_disables_the_stack_for_the_handler_only():
    events = p0("""
        sigaltstack(SIGSTKSZ, SS_AUTODISARM)
        sigaction(SIGUSR1, handler, SA_ONSTACK)
        kill(self, SIGUSR1)
        sigaltstack()
    """)
    assert events[2:5] == (
        H("SIGUSR1", alt=True, ss=DISABLE, change=0), Call(2, 0),
        Call(3, 0, (AltStack("region", Names(("SS_AUTODISARM",)), StackSize("SIGSTKSZ")),)))


def test_eperm_comes_before_einval_on_the_alternate_stack():
    k, p = boot()
    val(k, p, "sigaltstack", Stack("region", StackSize("SIGSTKSZ"), frozenset()))
    val(k, p, "sigaction", "SIGUSR1", "handler", Flags(("SA_ONSTACK",)))
    val(k, p, "kill", p, "SIGUSR1")
    (frame,) = k.deliver(p)
    assert frame.on_altstack
    bad = Stack("region", 10, frozenset({"SS_ONSTACK", "SS_DISABLE"}))
    assert val(k, p, "sigaltstack", bad) == Errno("EPERM")


def test_fork_inherits_the_alternate_stack():
    out = only("""
        sigaltstack(SIGSTKSZ)
        c = fork {
            sigaltstack()
        }
        waitpid(c)
    """)
    assert out.events(1)[1] == Call(2, 0, (AltStack("region", NONE, StackSize("SIGSTKSZ")),))


def test_sigaltstack_reports_autodisarm_even_when_disabled():
    """Linux do_sigaltstack: oss->ss_flags = sas_ss_flags(sp) | (sas_ss_flags & SS_FLAG_BITS)."""
    from conformance import syntax
    from conformance.events import AltStack, Call, Names
    from oracle import predict
    program = syntax.parse("sigaltstack(0, SS_DISABLE|SS_AUTODISARM)\nsigaltstack()\n")
    (outcome,) = predict(program).outcomes
    query = outcome.events(0)[1]
    assert isinstance(query, Call) and query.ret == 0
    assert query.outs == (AltStack(0, Names(("SS_DISABLE", "SS_AUTODISARM")), 0),)
