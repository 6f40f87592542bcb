"""The kernel model at syscall level; expectations come from POSIX and Linux's fs/pipe.c,
kernel/signal.c and kernel/exit.c, worked out by hand."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.events import Errno, WaitStatus
from conformance.ir import Flags, pattern
from oracle import BLOCKED, GONE, LINUX, POSIX, Done, Kernel, Profile

NONBLOCK = Flags(("O_NONBLOCK",))
WNOHANG = Flags(("WNOHANG",))


def boot(profile: Profile = LINUX) -> tuple[Kernel, int, int]:
    """A kernel with the driver and one program process."""
    k = Kernel(profile)
    driver = k.spawn_driver()
    return k, driver, k.spawn(driver)


def sys(k: Kernel, pid: int, name: str, *args):
    """One call; Done results are returned as (value, outs, data) for terse asserts."""
    r = k.syscall(pid, name, args)
    return (r.value, r.outs, r.data) if isinstance(r, Done) else r


def val(k: Kernel, pid: int, name: str, *args):
    """The value of a call that must complete."""
    r = k.syscall(pid, name, args)
    assert isinstance(r, Done), r
    return r.value


def fork(k: Kernel, pid: int) -> int:
    """Fork and return the child's pid."""
    return val(k, pid, "fork")


def settle(k: Kernel, pid: int) -> str:
    """Return to user mode (take pending signals) and report the process state."""
    k.deliver(pid)
    return k.state(pid)


def pipe_of(k: Kernel, pid: int, fd: int):
    return k.procs[pid].fds[fd].pipe


# -- fd table --------------------------------------------------------------------------------

def test_fds_are_allocated_lowest_free_first():
    k, _, p = boot()
    assert sys(k, p, "pipe") == (0, (3, 4), None)  # 0-2 belong to the harness
    assert sys(k, p, "pipe") == (0, (5, 6), None)
    assert val(k, p, "close", 3) == 0
    assert val(k, p, "dup", 6) == 3
    assert val(k, p, "dup", 6) == 7
    assert sys(k, p, "pipe")[1] == (8, 9)


def test_dup2_rules():
    k, _, p = boot()
    val(k, p, "pipe")                                     # 3, 4
    assert val(k, p, "dup2", 4, 4) == 4                    # same fd: just checked
    assert val(k, p, "dup2", 99, 99) == Errno("EBADF")
    assert val(k, p, "dup2", 4, 1024) == Errno("EBADF")    # newfd >= open_max
    assert val(k, p, "dup2", 4, -1) == Errno("EBADF")
    assert val(k, p, "dup2", 99, 10) == Errno("EBADF")
    assert val(k, p, "dup2", 4, 10) == 10
    assert val(k, p, "write", 10, b"x") == 1               # 10 is the write end now
    assert sys(k, p, "read", 3, 5) == (1, (), b"x")


def test_dup2_onto_an_open_fd_closes_it_silently():
    k, _, p = boot()
    val(k, p, "pipe")                                      # 3, 4
    val(k, p, "pipe")                                      # 5, 6
    assert val(k, p, "dup2", 4, 6) == 6                    # the second pipe loses its writer
    assert sys(k, p, "read", 5, 1) == (0, (), None)        # so its read end sees EOF


def test_dup2_copy_drops_cloexec():
    k, _, p = boot()
    val(k, p, "pipe2", Flags(("O_CLOEXEC",)))
    assert k.procs[p].cloexec == {3, 4}
    val(k, p, "dup2", 3, 7)
    assert 7 not in k.procs[p].cloexec


def test_emfile_at_open_max():
    k, _, p = boot(Profile(name="tiny", open_max=6))
    assert sys(k, p, "pipe")[1] == (3, 4)
    assert val(k, p, "dup", 3) == 5
    assert val(k, p, "dup", 3) == Errno("EMFILE")
    assert val(k, p, "pipe") == Errno("EMFILE")
    assert val(k, p, "dup2", 3, 6) == Errno("EBADF")


def test_ebadf_cases():
    k, _, p = boot()
    val(k, p, "pipe")                                      # 3 read, 4 write
    assert val(k, p, "write", 3, b"x") == Errno("EBADF")
    assert val(k, p, "read", 4, 1) == Errno("EBADF")
    assert val(k, p, "read", 42, 1) == Errno("EBADF")
    assert val(k, p, "dup", 42) == Errno("EBADF")
    assert val(k, p, "close", 42) == Errno("EBADF")
    assert val(k, p, "close", 3) == 0
    assert val(k, p, "close", 3) == Errno("EBADF")


def test_invalid_flag_bits_are_einval():
    k, _, p = boot()
    assert val(k, p, "pipe2", Flags(bits=0x1000)) == Errno("EINVAL")
    assert val(k, p, "waitpid", -1, Flags(bits=0x1000)) == Errno("EINVAL")
    assert val(k, p, "wait4", -1, Flags(("WNOHANG",), 0x1000)) == Errno("EINVAL")


# -- pipes -----------------------------------------------------------------------------------

def test_pipe_holds_sixteen_pages():
    k, _, p = boot()
    val(k, p, "pipe2", NONBLOCK)
    data = pattern(65536)
    assert val(k, p, "write", 4, data) == 65536
    assert val(k, p, "write", 4, b"x") == Errno("EAGAIN")
    assert sys(k, p, "read", 3, 65536) == (65536, (), data)


def test_nonblocking_big_write_is_partial():
    k, _, p = boot()
    val(k, p, "pipe2", NONBLOCK)
    assert val(k, p, "write", 4, pattern(70000)) == 65536


def test_small_writes_merge_into_the_last_page():
    k, _, p = boot()
    val(k, p, "pipe2", NONBLOCK)
    for _ in range(3):
        assert val(k, p, "write", 4, b"a" * 100) == 100
    assert pipe_of(k, p, 3).slots_used == 1
    val(k, p, "write", 4, b"b" * 4000)                     # 300 + 4000 > 4096: a new page
    assert pipe_of(k, p, 3).slots_used == 2


def test_a_page_full_of_small_data_blocks_page_sized_writes():
    # 1 byte, then 15 full pages: 16 slots in use with 61441 bytes, so 1 more byte cannot go in
    # (the last page is full and no slot is free), though the pipe holds less than 64 KiB.
    k, _, p = boot()
    val(k, p, "pipe2", NONBLOCK)
    assert val(k, p, "write", 4, b"x") == 1
    assert val(k, p, "write", 4, pattern(15 * 4096)) == 15 * 4096
    assert val(k, p, "write", 4, b"y") == Errno("EAGAIN")


def test_merge_limit_counts_the_read_offset():
    # Linux merges only if offset+len+chars <= PAGE_SIZE: the page's read bytes still count.
    k, _, p = boot()
    val(k, p, "pipe2", NONBLOCK)
    val(k, p, "write", 4, b"a" * 4000)
    val(k, p, "read", 3, 3000)
    val(k, p, "write", 4, b"b" * 100)                      # 3000 + 1000 + 100 > 4096
    assert pipe_of(k, p, 3).slots_used == 2


def test_large_writes_merge_their_remainder_first():
    k, _, p = boot()
    val(k, p, "pipe2", NONBLOCK)
    val(k, p, "write", 4, pattern(5000))                   # empty pipe: 4096 + 904
    assert pipe_of(k, p, 3).slots_used == 2
    val(k, p, "write", 4, pattern(5000))                   # 904 merge (904+904), then 4096
    assert pipe_of(k, p, 3).slots_used == 3
    assert sys(k, p, "read", 3, 10000)[2] == pattern(5000) + pattern(5000)


def test_bytes_model_has_no_page_accounting_and_atomic_small_writes():
    k, _, p = boot(POSIX)
    val(k, p, "pipe2", NONBLOCK)
    assert val(k, p, "write", 4, b"x") == 1
    assert val(k, p, "write", 4, pattern(15 * 4096)) == 15 * 4096
    assert val(k, p, "write", 4, b"y") == 1                # fits: 61442 of 65536 used
    assert val(k, p, "write", 4, pattern(4094)) == 4094    # exactly full
    assert val(k, p, "write", 4, b"z") == Errno("EAGAIN")
    val(k, p, "read", 3, 10)                               # 10 bytes free
    assert val(k, p, "write", 4, b"w" * 20) == Errno("EAGAIN")   # <= PIPE_BUF: all or nothing
    assert val(k, p, "write", 4, b"v" * 600) == 10         # > PIPE_BUF (512): partial


def test_eof_after_the_last_writer_closes():
    k, _, p = boot()
    val(k, p, "pipe")
    val(k, p, "write", 4, b"ab")
    val(k, p, "close", 4)
    assert sys(k, p, "read", 3, 16) == (2, (), b"ab")      # data first, then EOF
    assert sys(k, p, "read", 3, 16) == (0, (), None)


def test_zero_length_calls_return_at_once():
    k, _, p = boot()
    val(k, p, "pipe")
    assert val(k, p, "read", 3, 0) == 0                    # even though it would block
    val(k, p, "close", 3)
    assert val(k, p, "write", 4, b"") == 0                 # no SIGPIPE for an empty write
    assert settle(k, p) == "runnable"


def test_nonblocking_empty_read_is_eagain():
    k, _, p = boot()
    val(k, p, "pipe2", NONBLOCK)
    assert val(k, p, "read", 3, 1) == Errno("EAGAIN")


def test_read_blocks_until_a_write_and_returns_what_is_there():
    k, _, p = boot()
    val(k, p, "pipe")
    c = fork(k, p)
    assert k.syscall(c, "read", (3, 16)) is BLOCKED
    assert k.state(c) == "blocked"
    val(k, p, "write", 4, b"hi")
    assert k.runnable(c)
    assert sys(k, c, "read", 3, 16) == (2, (), b"hi")


def test_blocked_big_write_keeps_its_progress():
    k, _, p = boot()
    val(k, p, "pipe")
    c = fork(k, p)
    data = pattern(70000)
    assert k.syscall(p, "write", (4, data)) is BLOCKED     # 65536 in, 4464 to go
    assert sys(k, c, "read", 3, 65536) == (65536, (), data[:65536])
    assert k.runnable(p)
    assert val(k, p, "write", 4, data) == 70000            # the repeat returns the total
    assert sys(k, c, "read", 3, 65536) == (4464, (), data[65536:])


def test_close_of_the_last_writer_wakes_a_reader_with_eof():
    k, _, p = boot()
    val(k, p, "pipe")
    c = fork(k, p)
    val(k, c, "close", 4)
    assert k.syscall(c, "read", (3, 1)) is BLOCKED
    val(k, p, "close", 4)
    assert val(k, c, "read", 3, 1) == 0


def test_write_without_readers_is_epipe_and_sigpipe_kills():
    k, d, p = boot()
    val(k, p, "pipe")
    val(k, p, "close", 3)
    assert val(k, p, "write", 4, b"x") == Errno("EPIPE")
    assert settle(k, p) == "zombie"
    assert sys(k, d, "waitpid", -1, WNOHANG) == (p, (WaitStatus("killed", "SIGPIPE", False),), None)


def test_a_blocked_writer_whose_reader_leaves_gets_sigpipe():
    k, _, p = boot()
    val(k, p, "pipe")
    c = fork(k, p)
    val(k, p, "close", 3)
    val(k, c, "close", 4)
    assert k.syscall(p, "write", (4, pattern(70000))) is BLOCKED
    val(k, c, "close", 3)
    assert val(k, p, "write", 4, pattern(70000)) == 65536  # partial count, plus SIGPIPE
    assert settle(k, p) == "zombie"


# -- processes, wait and kill ----------------------------------------------------------------

def test_wait_errors_are_echild():
    k, _, p = boot()
    assert val(k, p, "waitpid", -1) == Errno("ECHILD")
    assert val(k, p, "waitpid", p) == Errno("ECHILD")
    c = fork(k, p)
    g = fork(k, c)
    assert val(k, p, "waitpid", g) == Errno("ECHILD")      # a grandchild is not a child
    assert val(k, c, "waitpid", p) == Errno("ECHILD")      # nor is a parent
    k.exit_process(c, 0)
    assert val(k, p, "waitpid", c) == c
    assert val(k, p, "waitpid", c) == Errno("ECHILD")      # already reaped


def test_wait_any_takes_children_in_creation_order():
    k, _, p = boot()
    a, b = fork(k, p), fork(k, p)
    k.exit_process(b, 2)
    k.exit_process(a, 1)
    assert sys(k, p, "waitpid", -1) == (a, (WaitStatus("exited", 1),), None)
    assert sys(k, p, "waitpid", -1) == (b, (WaitStatus("exited", 2),), None)


def test_wnohang_and_blocking_wait():
    k, _, p = boot()
    c = fork(k, p)
    assert sys(k, p, "waitpid", c, WNOHANG) == (0, (), None)
    assert k.syscall(p, "waitpid", (c,)) is BLOCKED
    k.exit_process(c, 7)
    assert k.runnable(p)
    assert sys(k, p, "wait4", c) == (c, (WaitStatus("exited", 7),), None)


def test_kill_esrch_einval_and_zombies():
    k, _, p = boot()
    c = fork(k, p)
    assert val(k, p, "kill", p, 65) == Errno("EINVAL")     # above max_signal
    assert val(k, p, "kill", p, -1) == Errno("EINVAL")
    k.exit_process(c, 0)
    assert val(k, p, "kill", c, 0) == 0                    # a zombie still exists
    assert val(k, p, "kill", c, "SIGTERM") == 0
    val(k, p, "waitpid", c)
    assert val(k, p, "kill", c, 0) == Errno("ESRCH")
    assert val(k, p, "kill", c, 65) == Errno("ESRCH")      # the lookup comes first
    assert val(k, p, "kill", 999, "SIGTERM") == Errno("ESRCH")


@pytest.mark.parametrize("sig, status", [
    ("SIGTERM", WaitStatus("killed", "SIGTERM", False)),
    ("SIGKILL", WaitStatus("killed", "SIGKILL", False)),
    ("SIGUSR1", WaitStatus("killed", "SIGUSR1", False)),
    ("SIGSEGV", WaitStatus("killed", "SIGSEGV", None)),    # core bit: the host decides
    ("SIGQUIT", WaitStatus("killed", "SIGQUIT", None)),
    (40, WaitStatus("killed", 40, False)),                  # realtime: term
])
def test_fatal_signals_and_their_wait_status(sig, status):
    k, _, p = boot()
    c = fork(k, p)
    assert val(k, p, "kill", c, sig) == 0
    assert k.runnable(c)                                    # delivered when it next runs
    assert settle(k, c) == "zombie"
    assert sys(k, p, "waitpid", c) == (c, (status,), None)


def test_core_flag_follows_the_profile():
    k, _, p = boot(Profile(name="cores", core_flag=True))
    c = fork(k, p)
    val(k, p, "kill", c, "SIGABRT")
    k.deliver(c)
    assert val(k, p, "waitpid", c, WNOHANG) == c
    assert k.status(c) == WaitStatus("killed", "SIGABRT", True)


@pytest.mark.parametrize("sig", ["SIGCHLD", "SIGURG", "SIGWINCH", "SIGCONT"])
def test_ignored_signals_do_nothing(sig):
    k, _, p = boot()
    c = fork(k, p)
    val(k, p, "kill", c, sig)
    assert k.procs[c].pending == []
    assert settle(k, c) == "runnable"
    assert val(k, p, "waitpid", c, Flags(("WNOHANG", "WCONTINUED"))) == 0  # was not stopped


def test_a_signal_to_oneself_acts_before_the_call_returns():
    k, _, p = boot()
    assert val(k, p, "kill", p, "SIGTERM") == 0
    assert settle(k, p) == "zombie"


def test_stop_report_continue_report():
    k, _, p = boot()
    c = fork(k, p)
    val(k, p, "kill", c, "SIGTSTP")
    assert settle(k, c) == "stopped"
    assert val(k, p, "waitpid", c, WNOHANG) == 0           # no WUNTRACED: not reported
    untraced = Flags(("WNOHANG", "WUNTRACED"))
    assert sys(k, p, "waitpid", c, untraced) == (c, (WaitStatus("stopped", "SIGTSTP"),), None)
    assert val(k, p, "waitpid", c, untraced) == 0          # reported once
    val(k, p, "kill", c, "SIGCONT")
    assert k.runnable(c)
    continued = Flags(("WNOHANG", "WCONTINUED"))
    assert sys(k, p, "waitpid", c, continued) == (c, (WaitStatus("continued"),), None)
    assert val(k, p, "waitpid", c, continued) == 0


def test_stopped_process_keeps_fatal_signals_until_continued():
    k, _, p = boot()
    c = fork(k, p)
    val(k, p, "kill", c, "SIGSTOP")
    k.deliver(c)
    val(k, p, "kill", c, "SIGTERM")
    assert k.state(c) == "stopped"                          # only SIGKILL wakes a stopped one
    val(k, p, "kill", c, "SIGCONT")
    assert settle(k, c) == "zombie"
    assert k.status(c) == WaitStatus("killed", "SIGTERM", False)


def test_sigkill_ends_a_stopped_process():
    k, _, p = boot()
    c = fork(k, p)
    val(k, p, "kill", c, "SIGSTOP")
    k.deliver(c)
    val(k, p, "kill", c, "SIGKILL")
    assert k.runnable(c)
    assert val(k, p, "waitpid", c, Flags(("WNOHANG", "WUNTRACED"))) == 0  # stop report gone
    assert settle(k, c) == "zombie"


def test_sigcont_discards_a_pending_stop():
    k, _, p = boot()
    c = fork(k, p)
    val(k, p, "kill", c, "SIGSTOP")
    val(k, p, "kill", c, "SIGCONT")
    assert settle(k, c) == "runnable"


def test_term_signal_wins_over_an_earlier_pending_stop():
    # Linux decides a fatal non-core signal at send time, whatever its number.
    k, _, p = boot()
    c = fork(k, p)
    val(k, p, "kill", c, "SIGSTOP")
    val(k, p, "kill", c, "SIGPROF")
    assert settle(k, c) == "zombie"
    assert k.status(c) == WaitStatus("killed", "SIGPROF", False)


def test_stop_interrupts_a_blocked_read_which_restarts():
    k, _, p = boot()
    val(k, p, "pipe")
    c = fork(k, p)
    assert k.syscall(c, "read", (3, 4)) is BLOCKED
    val(k, p, "kill", c, "SIGSTOP")
    assert k.syscall(c, "read", (3, 4)) is BLOCKED and k.runnable(c)   # interrupted
    assert settle(k, c) == "stopped"
    val(k, p, "write", 4, b"data")
    val(k, p, "kill", c, "SIGCONT")
    assert sys(k, c, "read", 3, 4) == (4, (), b"data")


def test_stop_cuts_a_blocked_write_short():
    k, _, p = boot()
    val(k, p, "pipe")
    c = fork(k, p)
    assert k.syscall(p, "write", (4, pattern(70000))) is BLOCKED
    val(k, c, "kill", p, "SIGSTOP")
    assert val(k, p, "write", 4, pattern(70000)) == 65536  # Linux returns the partial count
    assert settle(k, p) == "stopped"


def test_orphans_go_to_the_driver():
    k, d, p = boot()
    c = fork(k, p)
    assert val(k, c, "getppid") == p
    k.exit_process(p, 0)
    assert val(k, c, "getppid") == d
    assert k.children(d) == (p, c)
    assert sys(k, d, "waitpid", -1, WNOHANG) == (p, (WaitStatus("exited", 0),), None)
    assert val(k, d, "waitpid", -1, WNOHANG) == 0          # the orphan still runs
    k.exit_process(c, 4)
    assert sys(k, d, "waitpid", -1, WNOHANG) == (c, (WaitStatus("exited", 4),), None)


def test_kill_group_reaches_the_program_but_not_the_driver():
    k, d, p = boot()
    c = fork(k, p)
    assert val(k, c, "kill", 0, "SIGUSR1") == 0
    assert settle(k, c) == "zombie" and settle(k, p) == "zombie"
    assert k.state(d) == "runnable"


def test_exit_closes_fds_and_wakes_the_peer():
    k, _, p = boot()
    val(k, p, "pipe")
    c = fork(k, p)
    val(k, p, "close", 4)
    assert k.syscall(p, "read", (3, 1)) is BLOCKED
    assert k.syscall(c, "exit", (0,)) is GONE
    assert val(k, p, "read", 3, 1) == 0


def test_kill_all_ends_every_live_process():
    k, d, p = boot()
    val(k, p, "pipe")
    c = fork(k, p)
    assert k.syscall(c, "read", (3, 1)) is BLOCKED
    assert k.syscall(p, "waitpid", (c,)) is BLOCKED
    assert k.live() == [p, c]
    assert k.kill_all() == [p, c]
    killed = WaitStatus("killed", "SIGKILL", False)
    assert sys(k, d, "waitpid", -1, WNOHANG) == (p, (killed,), None)
    assert sys(k, d, "waitpid", -1, WNOHANG) == (c, (killed,), None)
    assert k.live() == []


def test_only_runnable_processes_make_calls():
    k, _, p = boot()
    val(k, p, "pipe")
    k.syscall(p, "read", (3, 1))
    with pytest.raises(RuntimeError, match="blocked"):
        k.syscall(p, "getpid", ())


def test_profile_knobs_are_validated():
    with pytest.raises(ValueError, match="pipe_model='ring'"):
        Profile(name="x", pipe_model="ring")
    with pytest.raises(ValueError, match="pipe_capacity"):
        Profile(name="x", pipe_capacity=1000)
    with pytest.raises(ValueError, match="open_max"):
        Profile(name="x", open_max=0)


# -- invariants under random call sequences --------------------------------------------------

_CALLS = st.tuples(
    st.sampled_from(["pipe", "pipe2", "write", "read", "close", "dup", "dup2", "fork", "exit",
                     "kill"]),
    st.integers(0, 3),            # which process makes the call
    st.integers(3, 9),            # an fd
    st.integers(3, 9),            # a second fd
    st.sampled_from([1, 100, 4096, 5000, 70000]),
)


def _check_invariants(k: Kernel) -> None:
    files = {}
    for p in k.procs.values():
        if p.state not in ("zombie", "reaped"):
            for f in p.fds.values():
                files.setdefault(id(f), [f, 0])[1] += 1
        else:
            assert not p.fds, "a dead process holds no fds"
    pipes = {}
    for f, slots in files.values():
        assert f.refs == slots, "refs count the fd slots"
        if f.pipe is not None:
            count = pipes.setdefault(id(f.pipe), [f.pipe, 0, 0])
            count[1 if f.kind == "read" else 2] += 1
    for pipe, readers, writers in pipes.values():
        assert (pipe.readers, pipe.writers) == (readers, writers)
        assert len(pipe) <= 65536 and pipe.slots_used <= 16


@settings(max_examples=60, deadline=None)
@given(st.lists(_CALLS, max_size=40))
def test_random_calls_keep_fd_and_pipe_counts_consistent(calls):
    k, _, first = boot()
    pids = [first]
    for name, who, fd, fd2, size in calls:
        pid = pids[who % len(pids)]
        if not k.runnable(pid) or k.procs[pid].write_done is not None:
            continue
        args = {"pipe": (), "pipe2": (NONBLOCK,), "write": (fd, pattern(size)),
                "read": (fd, size), "close": (fd,), "dup": (fd,), "dup2": (fd, fd2),
                "fork": (), "exit": (0,), "kill": (pids[fd % len(pids)], "SIGSTOP")}[name]
        result = k.syscall(pid, name, args)
        if name == "fork" and isinstance(result, Done):
            pids.append(result.value)
        k.deliver(pid)
        _check_invariants(k)
    k.kill_all()
    _check_invariants(k)
    assert k.live() == []
