"""Virtual time in the kernel model: interval timers, alarm, nanosleep, and advancing the clock.

Programs run infinitely fast: the clock (`Kernel.now`, µs) moves only when no process can run,
and then straight to the next event (timer expiry, end of a sleep, poll timeout). Spinning
processes use CPU time while it moves, which drives ITIMER_VIRTUAL and ITIMER_PROF. A timer
firing that cannot change anything (its signal already pending, or ignored) is skipped over, so
a program only waiting on such a timer hangs instead of ticking forever.

Timer signals are process-directed (Linux: PIDTYPE_TGID), so they go to the process's queue.
The CPU timers reload when they expire. A periodic ITIMER_REAL does too under the profile's
`itimer_real_restart` = "expiry" (POSIX's text); under "dequeue" (Linux) it goes idle when it
expires (it_real_fn returns HRTIMER_NORESTART) and restarts only when SIGALRM is taken from the
process's queue (dequeue_signal), at the next point of its original grid after that moment
(hrtimer_forward). Idle, it reads 0 with its interval; a SIGALRM ignored at generation or
discarded while pending is never taken, so the timer then stays idle.
"""
from __future__ import annotations

import math

from conformance.events import Errno
from conformance.ir import TIMERS
from oracle import signals
from oracle.process import BLOCKED_STATE, LIVE_STATES, RUNNABLE, SPINNING, Done, ITimer, Process
from oracle.signals import DEFAULT, SigInfo

TIMER_SIGNALS = {"ITIMER_REAL": "SIGALRM", "ITIMER_VIRTUAL": "SIGVTALRM",
                 "ITIMER_PROF": "SIGPROF"}
REAL = "ITIMER_REAL"


def alarm_seconds(left_us: int) -> int:
    """alarm()'s report of a timer's remaining time: seconds rounded half up, at least 1 if
    armed (Linux's alarm_setitimer)."""
    if left_us <= 0:
        return 0
    seconds, micros = divmod(left_us, 1_000_000)
    return max(1, seconds + (micros >= 500_000))


class TimerMixin:
    """Timer state and calls of `oracle.kernel.Kernel` (see the module docstring)."""

    def _timer_calls(self) -> dict:
        return {"setitimer": self._setitimer, "getitimer": self._getitimer,
                "alarm": self._alarm, "nanosleep": self._nanosleep}

    def timer_left(self, pid: int, which: str) -> tuple[int, int]:
        """(µs until the timer fires, 0 if disarmed; its interval in µs)."""
        p = self.procs[pid]
        t = p.timers.get(which)
        if t is None:
            return 0, 0
        clock = self.now if which == REAL else p.cpu
        return (t.expires - clock if t.expires and not t.idle else 0), t.interval

    def timer_bound(self, pid: int, which: str) -> int:
        """The most a target may read back as the timer's value (µs; 0 if disarmed): the time
        to the next expiry, or, once it has reloaded, its interval, since a late wake-up can
        carry a real timer past a reload the model has not reached."""
        t = self.procs[pid].timers.get(which)
        if t is None or not t.expires or t.idle:
            return 0
        return t.interval if t.reloaded else self.timer_left(pid, which)[0]

    # -- calls -------------------------------------------------------------------------------

    def _setitimer(self, p: Process, which: str | int, value_ms: int, interval_ms: int = 0
                   ) -> Done:
        if which not in TIMERS:
            return Done(Errno("EINVAL"))
        old = self.timer_left(p.pid, which)
        value, interval = value_ms * 1000, interval_ms * 1000
        if which == REAL:  # disarming ITIMER_REAL also clears its interval
            p.timers[which] = ITimer(self.now + value, interval) if value else ITimer()
        else:  # CPU timers keep the interval even when disarmed (Linux's set_cpu_itimer)
            p.timers[which] = ITimer(p.cpu + value if value else 0, interval)
        return Done(0, old)

    def _getitimer(self, p: Process, which: str | int) -> Done:
        if which not in TIMERS:
            return Done(Errno("EINVAL"))
        return Done(0, self.timer_left(p.pid, which))

    def _alarm(self, p: Process, seconds: int) -> Done:
        left, _ = self.timer_left(p.pid, REAL)
        p.timers[REAL] = ITimer(self.now + seconds * 1_000_000, 0) if seconds else ITimer()
        return Done(alarm_seconds(left))

    def _nanosleep(self, p: Process, ms: int) -> Done:
        if p.deadline is None:  # a restarted sleep keeps its end (the restart block)
            p.deadline = self.now + ms * 1000
        if self.now >= p.deadline:
            p.deadline = None
            return Done(0)
        if self._interrupted(p):
            return self._interrupt(p, "nanosleep", "block",
                                   Done(Errno("EINTR"), (p.deadline - self.now,)))
        return self._block(p, ("sleep", p.pid))

    # -- the clock ---------------------------------------------------------------------------

    def advance(self) -> bool:
        """Move time to the next event when no process can run; False if none will come."""
        events = []
        for p in self._timed():
            for which, t in p.timers.items():
                at = self._fires_at(p, which, t)
                if at is not None and not self._inert(p, TIMER_SIGNALS[which]):
                    events.append(at)
            if p.state == BLOCKED_STATE and p.deadline is not None:
                events.append(p.deadline)
        if not events or min(events) > self.profile.horizon_ms * 1000:
            return False
        target = max(min(events), self.now)
        for p in self._timed():
            if p.state == SPINNING:
                p.cpu += target - self.now
        self.now = target
        for p in self._timed():
            for which in TIMERS:
                t = p.timers.get(which)
                clock = self.now if which == REAL else p.cpu
                if t is not None and t.expires and not t.idle and t.expires <= clock:
                    if t.interval and which == REAL and \
                            self.profile.itimer_real_restart == "dequeue":
                        t.idle = True  # until SIGALRM is taken (`_sigalrm_taken`)
                    elif t.interval:
                        # Reload on the original grid; periods skipped over were inert.
                        t.expires += t.interval * max(1, math.ceil((clock - t.expires + 1)
                                                                   / t.interval))
                        t.reloaded = True
                    else:
                        t.expires = 0
                    sig = TIMER_SIGNALS[which]
                    self.send_signal(p.pid, sig, SigInfo(sig, "SI_KERNEL", 0))
            if p.state == BLOCKED_STATE and p.deadline is not None and p.deadline <= self.now:
                p.state, p.wchan = RUNNABLE, None  # its call sees the deadline passed
        return True

    def _timed(self) -> list[Process]:
        return [p for p in self.procs.values() if p.state in LIVE_STATES and p.pid != self.driver]

    def _sigalrm_taken(self, p: Process) -> None:
        """SIGALRM was taken from the process's queue: restart an idle ITIMER_REAL (Linux's
        posixtimer_rearm_itimer: hrtimer_forward to the first grid point after now)."""
        t = p.timers.get(REAL)
        if t is not None and t.idle:
            t.expires += t.interval * ((self.now - t.expires) // t.interval + 1)
            t.idle, t.reloaded = False, True

    def _fires_at(self, p: Process, which: str, t: ITimer) -> int | None:
        if not t.expires or t.idle:
            return None
        if which == REAL:
            return t.expires
        # CPU time only passes while the process spins.
        return self.now + max(0, t.expires - p.cpu) if p.state == SPINNING else None

    @staticmethod
    def _inert(p: Process, sig: str) -> bool:
        """Whether generating `sig` now would change nothing at all."""
        if p.doomed is not None or any(s == sig for s, _ in p.shared_pending):
            return True
        return sig not in p.blocked and signals.ignores(p.actions.get(sig, DEFAULT), sig)
