"""poll and ppoll on pipes in the kernel model (Linux's do_poll and pipe_poll).

A read end reports POLLIN while it holds data and POLLHUP once it has no writers; a write end
POLLOUT while a buffer slot is free and POLLERR once it has no readers; a closed fd POLLNVAL; a
negative fd nothing. Only requested events plus POLLERR/POLLHUP/POLLNVAL are reported. Linux
checks for a pending signal only when nothing is ready, before looking at the timeout.
"""
from __future__ import annotations

from conformance.ir import NO_MASK, POLL_EVENTS, Flags, SigSet
from oracle.process import EINTR, Blocked, Done, Process

_ALWAYS = frozenset({"POLLERR", "POLLHUP", "POLLNVAL"})


class PollMixin:
    """poll/ppoll calls of `oracle.kernel.Kernel` (see the module docstring)."""

    def _poll_calls(self) -> dict:
        return {"poll": self._poll, "ppoll": self._ppoll}

    def _poll(self, p: Process, fds: tuple, timeout: int) -> Done | Blocked:
        """`fds`: conformance.ir.PollFd entries whose fd is an int."""
        # poll turns ERESTARTNOHAND into a restart block: never restarted under a handler.
        return self._do_poll(p, "poll", "block", fds, timeout)

    def _ppoll(self, p: Process, fds: tuple, timeout: int, mask: SigSet | str = NO_MASK
               ) -> Done | Blocked:
        self._apply_mask(p, mask)
        return self._do_poll(p, "ppoll", "nohand", fds, timeout)

    def revents(self, p: Process, fd: int, events: Flags) -> tuple[str, ...]:
        """The events an fd reports, in POLL_EVENTS order."""
        if fd < 0:
            return ()
        f = p.fds.get(fd)
        if f is None:
            return ("POLLNVAL",)
        ready = set()
        if f.kind == "read":
            if not f.pipe.empty():
                ready.add("POLLIN")
            if not f.pipe.writers:
                ready.add("POLLHUP")
        elif f.kind == "write":
            if f.pipe.writable():
                ready.add("POLLOUT")
            if not f.pipe.readers:
                ready.add("POLLERR")
        else:
            ready.add("POLLOUT")  # the harness console
        ready &= set(events.names) | _ALWAYS
        return tuple(e for e in POLL_EVENTS if e in ready)

    def _do_poll(self, p: Process, call: str, kind: str, fds: tuple, timeout: int
                 ) -> Done | Blocked:
        if p.deadline is None and timeout > 0:  # a restart keeps the first deadline
            p.deadline = self.now + timeout * 1000
        found = tuple(self.revents(p, entry.fd, entry.events) for entry in fds)
        count = sum(1 for r in found if r)
        if not count and self._interrupted(p):
            return self._interrupt(p, call, kind, EINTR)
        if count or timeout == 0 or (p.deadline is not None and self.now >= p.deadline):
            p.deadline = None
            if p.saved_mask is not None:  # ppoll puts the old mask back before returning
                p.blocked, p.saved_mask = p.saved_mask, None
            return Done(count, found)
        pipes = frozenset(p.fds[e.fd].pipe for e in fds if e.fd >= 0 and e.fd in p.fds
                          and p.fds[e.fd].pipe is not None)
        return self._block(p, pipes)
