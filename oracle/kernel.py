"""The kernel model: processes, fd tables, pipes, groups and wait, behind a syscall interface.

Everything is concrete: pids are ints this kernel allocates, fds are ints, data is bytes.
Signals are names (or realtime ints) and flags are `conformance.ir.Flags`, because their numbers
belong to the ABI tables. A caller (the predictor, or a reference machine running real code)
drives it like a CPU does:

    result = kernel.syscall(pid, "read", (fd, 16))   # Done, BLOCKED or GONE
    frames = kernel.deliver(pid)                      # return to user mode: take signals

`deliver` must run on every return to user mode (after each call, and before a process resumes
user code: signals other processes sent it are taken then). It returns the handler frames it set
up, in setup order: the machine pushes them and runs the last one first. A handler's own calls
go through `syscall` too and end with "rt_sigreturn", each followed by `deliver`.

A call that returned BLOCKED is repeated, with the same arguments, once the process is runnable
again (woken, continued after a stop, or after the handlers that interrupted it returned); the
kernel then answers it (EINTR, a restart, or the result it was waiting for). A big pipe write
keeps its progress across repeats and finally returns the total. When no process can run,
`advance()` moves virtual time to the next timer expiry or timeout.

Signal delivery lives in `oracle.delivery`, timers in `oracle.timers`, poll in `oracle.polling`.
"""
from __future__ import annotations

from typing import Callable

from conformance.events import Errno, WaitStatus
from conformance.ir import Flags
from oracle import signals
from oracle.delivery import SignalMixin
from oracle.pipes import Pipe
from oracle.polling import PollMixin
from oracle.process import (
    BLOCKED, BLOCKED_STATE, EINTR, GONE, LIVE_STATES, REAPED, RUNNABLE, ZOMBIE, Blocked, Done,
    Frame, Gone, OpenFile, Process, Stack,
)
from oracle.profile import LINUX, Profile
from oracle.signals import Signal, SigInfo
from oracle.timers import TimerMixin

__all__ = ["BLOCKED", "GONE", "Blocked", "Done", "Frame", "Gone", "Kernel", "Process", "Stack"]
HARNESS_FDS = (0, 1, 2)


class Kernel(SignalMixin, TimerMixin, PollMixin):
    """A POSIX kernel model with a syscall-level interface (see the module docstring).

    `chooser` picks among options where the profile leaves a choice open (it gets a list of at
    least two and returns one of them); the default takes the first."""

    def __init__(self, profile: Profile = LINUX,
                 chooser: Callable[[list], object] | None = None):
        self.profile = profile
        self.chooser = chooser or (lambda options: options[0])
        self.now = 0  # virtual time in µs
        self.procs: dict[int, Process] = {}
        self.driver: int | None = None
        self.console: list[tuple[int, int, bytes]] = []  # (pid, fd, bytes) written to fds 0-2
        self._next_pid = 1
        self._calls: dict[str, Callable] = {
            "pipe": self._pipe, "pipe2": self._pipe, "write": self._write, "read": self._read,
            "close": self._close, "dup": self._dup, "dup2": self._dup2,
            "getpid": lambda p: Done(p.pid), "getppid": lambda p: Done(p.ppid),
            "fork": self._fork, "waitpid": self._wait, "wait4": self._wait4,
            "kill": self._kill, "exit": self._exit,
            "setpgid": self._setpgid, "getpgid": self._getpgid,
            "getpgrp": lambda p: Done(p.pgid),
        }
        self._calls.update(self._signal_calls())
        self._calls.update(self._timer_calls())
        self._calls.update(self._poll_calls())

    # -- processes ---------------------------------------------------------------------------

    def spawn_driver(self) -> int:
        """Create the driver: the harness process that starts programs and reaps orphans."""
        assert self.driver is None, "the driver exists already"
        p = self._new_process(ppid=0)
        console = OpenFile("console")
        for fd in HARNESS_FDS:
            self._install(p, fd, console)
        self.driver = p.pid
        return p.pid

    def spawn(self, parent: int) -> int:
        """Start a new program process as a child of `parent` (inheriting its fds), in its own
        process group, as the harness does with fork + setpgid + exec."""
        pp = self.procs[parent]
        p = self._new_process(ppid=parent)
        p.pgid = p.pid
        for fd, f in pp.fds.items():
            self._install(p, fd, f)
        pp.children.append(p.pid)
        return p.pid

    def state(self, pid: int) -> str:
        """runnable, blocked, spinning, stopped, zombie or reaped."""
        return self.procs[pid].state

    def runnable(self, pid: int) -> bool:
        """Whether the process can run now."""
        return self.procs[pid].state == RUNNABLE

    def parent(self, pid: int) -> int:
        """The current parent pid (the driver once the original parent died)."""
        return self.procs[pid].ppid

    def children(self, pid: int) -> tuple[int, ...]:
        """The unreaped children, in wait-scan order."""
        return tuple(self.procs[pid].children)

    def status(self, pid: int) -> WaitStatus | None:
        """How a dead process ended (None while it lives)."""
        return self.procs[pid].status

    def live(self) -> list[int]:
        """Pids of every live process except the driver, in pid order."""
        return [p.pid for p in self.procs.values()
                if p.state in LIVE_STATES and p.pid != self.driver]

    def exit_process(self, pid: int, code: int) -> None:
        """The process exits with `code`: fds closed, children to the driver, parent woken."""
        self._die(self.procs[pid], WaitStatus("exited", code))

    def kill_all(self) -> list[int]:
        """SIGKILL every live process at once (the harness's watchdog); return their pids."""
        victims = self.live()
        for pid in victims:
            self._die(self.procs[pid], WaitStatus("killed", "SIGKILL", False))
        return victims

    # -- syscalls ----------------------------------------------------------------------------

    def syscall(self, pid: int, name: str, args: tuple = ()) -> Done | Blocked | Gone:
        """Run one call for a runnable process; see the module docstring for the protocol."""
        p = self.procs[pid]
        if p.state != RUNNABLE:
            raise RuntimeError(f"pid {pid} is {p.state}: only a runnable process makes calls")
        if not p.frames:  # the program's own code, not a handler's
            if p.resume is not None:
                call, result = p.resume
                if call != name:
                    raise RuntimeError(f"pid {pid} must repeat its interrupted {call}, not call "
                                       f"{name}")
                p.resume = None
                return result
            if p.interruption is not None:
                # Repeated without a delivery in between: that is a restart.
                self._restart(p)
            if p.write_done is not None and name != "write":
                raise RuntimeError(f"pid {pid} must repeat its blocked write, not call {name}")
        try:
            call = self._calls[name]
        except KeyError:
            known = ", ".join(sorted(self._calls))
            raise ValueError(f"unknown call {name!r} (known: {known})") from None
        return call(p, *args)

    def _pipe(self, p: Process, flags: Flags = Flags()) -> Done:
        if flags.bits:
            return Done(Errno("EINVAL"))
        fd0 = self._lowest_free(p)
        fd1 = self._lowest_free(p, skip=fd0)
        if fd0 is None or fd1 is None:
            return Done(Errno("EMFILE"))
        pipe = Pipe(self.profile)
        nonblock, cloexec = "O_NONBLOCK" in flags.names, "O_CLOEXEC" in flags.names
        pipe.readers = pipe.writers = 1
        self._install(p, fd0, OpenFile("read", pipe, nonblock), cloexec)
        self._install(p, fd1, OpenFile("write", pipe, nonblock), cloexec)
        return Done(0, (fd0, fd1))

    def _write(self, p: Process, fd: int, data: bytes) -> Done | Blocked:
        f = p.fds.get(fd)
        if f is None or f.kind == "read":
            return Done(Errno("EBADF"))
        if f.kind == "console":
            self.console.append((p.pid, fd, bytes(data)))
            return Done(len(data))
        if not data:
            return Done(0)  # Linux returns before looking for readers
        pipe, fresh = f.pipe, p.write_done is None
        done = p.write_done or 0
        p.write_done = None
        if not pipe.readers:
            # send_sig(SIGPIPE, current, 0): directed at the writing thread, on its own queue.
            self.send_signal(p.pid, "SIGPIPE", SigInfo("SIGPIPE", "SI_USER", p.pid), thread=True)
            return Done(done or Errno("EPIPE"))
        stored = pipe.offer(data, done, fresh)
        if stored > done:
            self._wake(pipe)
        if stored == len(data):
            return Done(stored)
        if f.nonblock:
            return Done(stored or Errno("EAGAIN"))
        if self._interrupted(p):
            # Linux returns a partial count; with nothing written it is ERESTARTSYS.
            return Done(stored) if stored else self._interrupt(p, "write", "sys", EINTR)
        p.write_done = stored
        return self._block(p, pipe)

    def _read(self, p: Process, fd: int, n: int) -> Done | Blocked:
        f = p.fds.get(fd)
        if f is None or f.kind == "write":
            return Done(Errno("EBADF"))
        if n == 0 or f.kind == "console":
            return Done(0)
        pipe = f.pipe
        if not pipe.empty():
            data = pipe.take(n)
            self._wake(pipe)
            return Done(len(data), data=data)
        if not pipe.writers:
            return Done(0)
        if f.nonblock:
            return Done(Errno("EAGAIN"))
        if self._interrupted(p):
            return self._interrupt(p, "read", "sys", EINTR)
        return self._block(p, pipe)

    def _close(self, p: Process, fd: int) -> Done:
        if fd not in p.fds:
            return Done(Errno("EBADF"))
        self._release(p, fd)
        return Done(0)

    def _dup(self, p: Process, fd: int) -> Done:
        if fd not in p.fds:
            return Done(Errno("EBADF"))
        new = self._lowest_free(p)
        if new is None:
            return Done(Errno("EMFILE"))
        self._install(p, new, p.fds[fd])
        return Done(new)

    def _dup2(self, p: Process, old: int, new: int) -> Done:
        if old == new:
            return Done(old if old in p.fds else Errno("EBADF"))
        if not 0 <= new < self.profile.open_max or old not in p.fds:
            return Done(Errno("EBADF"))
        f = p.fds[old]
        if new in p.fds:
            self._release(p, new)  # dup2 closes newfd silently
        self._install(p, new, f)   # the copy never inherits FD_CLOEXEC
        return Done(new)

    def _fork(self, p: Process) -> Done:
        child = self._new_process(ppid=p.pid)
        child.pgid = p.pgid
        # Dispositions, mask and alternate stack are inherited; pending signals and timers not.
        child.actions, child.blocked, child.altstack = dict(p.actions), p.blocked, p.altstack
        for fd, f in p.fds.items():
            self._install(child, fd, f, fd in p.cloexec)
        p.children.append(child.pid)
        return Done(child.pid)

    def _wait(self, p: Process, target: int, flags: Flags = Flags(), name: str = "waitpid"
              ) -> Done | Blocked:
        if flags.bits:
            return Done(Errno("EINVAL"))
        kids = [self.procs[c] for c in p.children if self._wait_matches(p, self.procs[c], target)]
        if not kids:
            return Done(Errno("ECHILD"))
        for c in kids:
            if c.state == ZOMBIE:
                c.state = REAPED
                p.children.remove(c.pid)
                return Done(c.pid, (c.status,))
            if "WUNTRACED" in flags.names and c.stop_report is not None:
                sig, c.stop_report = c.stop_report, None
                return Done(c.pid, (WaitStatus("stopped", sig),))
            if "WCONTINUED" in flags.names and c.cont_report:
                c.cont_report = False
                return Done(c.pid, (WaitStatus("continued"),))
        if "WNOHANG" in flags.names:
            return Done(0)
        if self._interrupted(p):
            return self._interrupt(p, name, "sys", EINTR)
        return self._block(p, ("wait", p.pid))

    def _wait4(self, p: Process, target: int, flags: Flags = Flags()) -> Done | Blocked:
        return self._wait(p, target, flags, "wait4")

    @staticmethod
    def _wait_matches(p: Process, c: Process, target: int) -> bool:
        if target > 0:
            return c.pid == target
        if target == -1:
            return True
        return c.pgid == (p.pgid if target == 0 else -target)

    def _kill(self, p: Process, target: int, sig: Signal) -> Done:
        victims = self._kill_targets(p, target)
        if not victims:
            return Done(Errno("ESRCH"))
        if not signals.valid(sig, self.profile.max_signal):
            return Done(Errno("EINVAL"))  # Linux looks the target up first
        if sig != 0:
            for v in victims:
                self.send_signal(v.pid, sig, SigInfo(sig, "SI_USER", p.pid))
        return Done(0)

    def _kill_targets(self, p: Process, target: int) -> list[Process]:
        existing = [q for q in self.procs.values() if q.state != REAPED]
        if target > 0:
            return [q for q in existing if q.pid == target]
        if target == -1:  # everyone but init (our driver) and the caller
            return [q for q in existing if q.pid not in (self.driver, p.pid)]
        group = p.pgid if target == 0 else -target
        return [q for q in existing if q.pgid == group]

    def _exit(self, p: Process, code: int) -> Gone:
        self.exit_process(p.pid, code)
        return GONE

    # -- process groups ----------------------------------------------------------------------

    def _setpgid(self, p: Process, pid: int, pgid: int) -> Done:
        pid = pid or p.pid
        pgid = pgid or pid
        target = self.procs.get(pid)
        # Linux finds zombies too (they keep their pid until reaped); only a child or the
        # caller itself may be moved.
        if target is None or target.state == REAPED or (target is not p and target.ppid != p.pid):
            return Done(Errno("ESRCH"))
        if pgid != pid and not any(q.pgid == pgid and q.state != REAPED
                                   for q in self.procs.values()):
            return Done(Errno("EPERM"))  # no such group in the session
        target.pgid = pgid
        return Done(0)

    def _getpgid(self, p: Process, pid: int) -> Done:
        target = self.procs.get(pid or p.pid)
        if target is None or target.state == REAPED:
            return Done(Errno("ESRCH"))
        return Done(target.pgid)

    # -- internals ---------------------------------------------------------------------------

    def _new_process(self, ppid: int) -> Process:
        p = Process(pid=self._next_pid, ppid=ppid, pgid=self._next_pid)
        self.procs[p.pid] = p
        self._next_pid += 1
        return p

    def _lowest_free(self, p: Process, skip: int | None = None) -> int | None:
        for fd in range(self.profile.open_max):
            if fd not in p.fds and fd != skip:
                return fd
        return None

    @staticmethod
    def _install(p: Process, fd: int, f: OpenFile, cloexec: bool = False) -> None:
        p.fds[fd] = f
        f.refs += 1
        if cloexec:
            p.cloexec.add(fd)

    def _release(self, p: Process, fd: int) -> None:
        f = p.fds.pop(fd)
        p.cloexec.discard(fd)
        f.refs -= 1
        if f.refs == 0 and f.pipe is not None:
            if f.kind == "read":
                f.pipe.readers -= 1
            else:
                f.pipe.writers -= 1
            self._wake(f.pipe)

    @staticmethod
    def _block(p: Process, chan: object) -> Blocked:
        p.state, p.wchan = BLOCKED_STATE, chan
        return BLOCKED

    def _wake(self, chan: object) -> None:
        for q in self.procs.values():
            if q.state == BLOCKED_STATE and (q.wchan == chan or isinstance(q.wchan, frozenset)
                                             and chan in q.wchan):  # a poll waits on a set
                q.state, q.wchan = RUNNABLE, None

    def _die(self, p: Process, status: WaitStatus) -> None:
        for fd in sorted(p.fds):
            self._release(p, fd)
        p.state, p.status, p.wchan = ZOMBIE, status, None
        p.pending, p.shared_pending, p.doomed, p.write_done = [], [], None, None
        p.stop_report, p.cont_report, p.cont_notify = None, False, False
        p.frames, p.interruption, p.resume, p.saved_mask = [], None, None, None
        p.deadline, p.timers = None, {}
        if p.children and self.driver is not None:
            driver = self.procs[self.driver]
            for c in p.children:  # orphans go to the driver, the pid namespace's init
                self.procs[c].ppid = self.driver
                driver.children.append(c)
            p.children = []
            self._wake(("wait", self.driver))
        self._notify_exit(p)  # SIGCHLD, or gone at once if the parent ignores SIGCHLD
        self._wake(("wait", p.ppid))
