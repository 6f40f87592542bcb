"""Signals in the kernel model: generation, delivery with handler frames, the signal calls.

Generation follows Linux's __send_signal: SIGCONT/stop side effects first, then ignored signals
are dropped (unless blocked), a standard signal already pending in the target queue is dropped,
and a fatal default action that nothing blocks dooms the process at once (complete_signal).

There are two queues, as in Linux: the thread's own (task->pending) for thread-directed signals
(write's SIGPIPE, send_sig with PIDTYPE_PID; a fault would go there too) and the process's
(signal->shared_pending) for process-directed ones (kill, the interval timers, SIGCHLD:
PIDTYPE_TGID). A standard signal is pending at most once per queue, so once in each.

Delivery follows Linux's return to user mode: while an unblocked signal is pending, take it
(dequeue_signal: from the thread's queue if it has one, else from the process's; within a queue
by the profile's `signal_order`), and either act by default (ignore, stop, die) or set up a
handler frame (save the mask to restore, block sa_mask plus the signal unless SA_NODEFER, reset
the action for SA_RESETHAND), then look again. The first frame set up decides how an
interrupted call ends. Taking SIGALRM from the process's queue restarts an idle periodic
ITIMER_REAL (see `oracle.timers`).
"""
from __future__ import annotations

from conformance.events import Errno, WaitStatus
from conformance.ir import MASK_HOWS, NO_MASK, SA_FLAGS, Flags, SigSet, StackSize
from oracle import signals
from oracle.process import (
    BLOCKED, BLOCKED_STATE, DISABLED, LIVE_STATES, REAPED, RUNNABLE, SPINNING, STOPPED, Blocked,
    Done, Frame, Interruption, Process, Stack,
)
from oracle.signals import DEFAULT, HANDLER, IGN, Action, Signal, SigInfo

_CORE_CODES = {True: "CLD_DUMPED", False: "CLD_KILLED"}
_SS_MODES = (frozenset(), frozenset({"SS_ONSTACK"}), frozenset({"SS_DISABLE"}))
# StackSize offsets this far below SIGSTKSZ stay above MINSIGSTKSZ on every ABI (the smallest
# gap is x86-64's 8192 - 2048).
_SIGSTKSZ_SLACK = 6144


def stack_too_small(size) -> bool:
    """Whether an alternate-stack size is below MINSIGSTKSZ on every ABI (ValueError if the
    answer depends on the ABI)."""
    if isinstance(size, StackSize):
        if size.name == "MINSIGSTKSZ":
            return size.delta < 0
        if size.delta > -_SIGSTKSZ_SLACK:
            return False
    elif size < 1024 or size >= 32768:
        return size < 1024
    raise ValueError(f"stack size {size!r}: whether it is below MINSIGSTKSZ depends on the ABI")


class SignalMixin:
    """Signal state and calls of `oracle.kernel.Kernel` (see the module docstring)."""

    def _signal_calls(self) -> dict:
        return {"sigaction": self._sigaction, "sigprocmask": self._sigprocmask,
                "sigpending": self._sigpending, "sigsuspend": self._sigsuspend,
                "pause": self._pause, "spin": self._spin, "sigaltstack": self._sigaltstack,
                "rt_sigreturn": self._sigreturn}

    # -- generation --------------------------------------------------------------------------

    def send_signal(self, pid: int, sig: Signal, info: SigInfo | None = None,
                    thread: bool = False) -> None:
        """Generate a signal for a process (Linux's send path); `info` defaults to SI_KERNEL.

        `thread`: directed at the thread (Linux PIDTYPE_PID: write's SIGPIPE, faults), queued on
        its own queue; otherwise process-wide (PIDTYPE_TGID: kill, timers, SIGCHLD)."""
        t = self.procs[pid]
        if pid == self.driver or t.state not in LIVE_STATES or t.doomed is not None:
            return  # the driver is outside the model; dead or dying processes drop signals
        info = info or SigInfo(sig, "SI_KERNEL", 0)
        default = signals.default_action(sig)
        if default == signals.STOP:  # prepare_signal flushes both queues
            self._flush(t, lambda s: s == "SIGCONT")
        elif sig == "SIGCONT":
            self._flush(t, lambda s: signals.default_action(s) == signals.STOP)
            if t.state == STOPPED:
                t.state, t.stop_report, t.cont_report, t.cont_notify = RUNNABLE, None, True, True
                self._wake(("wait", t.ppid))
        action = t.actions.get(sig, DEFAULT)
        blocked = sig in t.blocked
        if not blocked and signals.ignores(action, sig):
            return  # discarded at generation
        queue = t.pending if thread else t.shared_pending
        if isinstance(sig, str) and any(s == sig for s, _ in queue):
            return  # standard signals do not queue (legacy_queue: in the target queue)
        queue.append((sig, info))
        if blocked:
            return
        if action.handler == signals.DFL and (
                sig == "SIGKILL" or default == signals.TERM and t.state != STOPPED):
            # Linux turns a fatal non-core signal into a group exit at once (complete_signal).
            t.doomed, t.stop_report, t.cont_report, t.cont_notify = sig, None, False, False
            t.state, t.wchan = RUNNABLE, None
        elif t.state in (BLOCKED_STATE, SPINNING):
            t.state, t.wchan = RUNNABLE, None  # interrupted; a stopped process stays stopped

    def _notify_exit(self, p: Process) -> None:
        """The parent learns of a death: SIGCHLD, or no zombie at all if it ignores SIGCHLD."""
        parent = self.procs[p.ppid]
        if parent.pid == self.driver:
            return
        action = parent.actions.get("SIGCHLD", DEFAULT)
        if action.handler == IGN:
            p.state = REAPED  # auto-reaped (Linux: autoreap in exit_notify)
            parent.children.remove(p.pid)
            return
        status = p.status
        if status.how == "exited":
            code = "CLD_EXITED"
        elif status.core is None and (action.handler == HANDLER or "SIGCHLD" in parent.blocked):
            code = self.chooser(list(_CORE_CODES.values()))  # the host decides on core dumps
        else:
            code = _CORE_CODES[bool(status.core)]
        self.send_signal(parent.pid, "SIGCHLD", SigInfo("SIGCHLD", code, p.pid))

    def _notify_stop(self, p: Process, code: str) -> None:
        """CLD_STOPPED / CLD_CONTINUED to the parent, unless it asked for SA_NOCLDSTOP."""
        parent = self.procs[p.ppid]
        action = parent.actions.get("SIGCHLD", DEFAULT)
        if parent.pid != self.driver and action.handler != IGN and \
                "SA_NOCLDSTOP" not in action.flags:
            self.send_signal(parent.pid, "SIGCHLD", SigInfo("SIGCHLD", code, p.pid))
        self._wake(("wait", parent.pid))

    # -- delivery ----------------------------------------------------------------------------

    def deliver(self, pid: int) -> list[Frame]:
        """Return to user mode: act on pending signals; return the handler frames set up, in
        setup order (the last one runs first). The process may be stopped or dead afterwards."""
        p = self.procs[pid]
        frames: list[Frame] = []
        while p.state == RUNNABLE:
            if p.doomed is not None:
                self._die(p, WaitStatus("killed", p.doomed, False))
                return []
            if p.cont_notify:  # Linux sends it when the continued process next runs
                p.cont_notify = False
                self._notify_stop(p, "CLD_CONTINUED")
            entry = self._dequeue(p)
            if entry is None:
                break
            sig, info = entry
            action = p.actions.get(sig, DEFAULT)
            if action.handler == HANDLER:
                frames.append(self._setup_frame(p, sig, info, action))
                continue
            if action.handler == IGN:
                continue
            default = signals.default_action(sig)
            if default == signals.STOP:
                p.state, p.stop_report, p.cont_report = STOPPED, sig, False
                self._notify_stop(p, "CLD_STOPPED")
            elif default in (signals.TERM, signals.CORE):
                core = self.profile.core_flag if default == signals.CORE else False
                self._die(p, WaitStatus("killed", sig, core))
                return []
        if p.state == RUNNABLE:
            if p.interruption is not None:
                self._restart(p)  # no handler ran: the interrupted call starts over
            if p.frames:
                p.frames[-1].started = True  # user mode resumes in the newest frame
        return frames

    def handler_depth(self, pid: int) -> int:
        """How many handler invocations of the process have started and not returned."""
        return sum(f.started for f in self.procs[pid].frames)

    def _dequeue(self, p: Process) -> tuple[Signal, SigInfo] | None:
        if not p.pending and not p.shared_pending:  # the usual case, on every return to user
            return None
        queues = (p.pending, p.shared_pending)
        ready = [[e for e in q if e[0] not in p.blocked] for q in queues]
        if not any(ready):
            return None
        key = lambda e: signals.order_key(e[0], self.profile.signal_order)  # noqa: E731
        if self.profile.delivery_order == "any":
            # POSIX orders only realtime signals (lowest first): any standard one may go first,
            # from either queue.
            options = []
            for q, r in zip(queues, ready):
                options += [(q, e) for k, e in enumerate(r)
                            if isinstance(e[0], str) and e[0] not in [o[0] for o in r[:k]]]
            realtime = [e[0] for r in ready for e in r if isinstance(e[0], int)]
            if realtime:
                low = min(realtime)
                options += [(q, next(e for e in r if e[0] == low))
                            for q, r in zip(queues, ready) if any(e[0] == low for e in r)]
            options.sort(key=lambda o: key(o[1]))  # stable: the thread's queue first on ties
            queue, first = options[0] if len(options) == 1 else self.chooser(options)
        else:
            # Linux's dequeue_signal: the thread's queue, then the process's.
            queue, r = (queues[0], ready[0]) if ready[0] else (queues[1], ready[1])
            first = min(r, key=key)
        queue.remove(first)
        if queue is p.shared_pending and first[0] == "SIGALRM":
            self._sigalrm_taken(p)
        return first

    def _setup_frame(self, p: Process, sig: Signal, info: SigInfo, action: Action) -> Frame:
        if p.interruption is not None:
            cut = p.interruption
            p.interruption = None
            if not (cut.kind == "sys" and "SA_RESTART" in action.flags):
                p.resume, p.deadline = (cut.call, cut.result), None
        restore = p.saved_mask if p.saved_mask is not None else p.blocked
        p.saved_mask = None
        on_alt = self._sp_on_altstack(p)
        if "SA_ONSTACK" in action.flags and not self._ss_flags(p, on_alt):
            on_alt = True  # switch to the top of the alternate stack
        frame = Frame(sig, info, action.flags, on_alt, restore, p.altstack)
        if "SS_AUTODISARM" in p.altstack.flags:
            p.altstack = DISABLED
        if "SA_RESETHAND" in action.flags:
            flags = action.flags
            if self.profile.resethand_clears_siginfo:
                flags = tuple(f for f in flags if f != "SA_SIGINFO")
            p.actions[sig] = Action(signals.DFL, flags, action.mask)
        extra = action.mask if "SA_NODEFER" in action.flags else action.mask | {sig}
        p.blocked = signals.blockable(p.blocked | extra)
        p.frames.append(frame)
        return frame

    def _sigreturn(self, p: Process) -> Done:
        if not p.frames:
            raise RuntimeError(f"pid {p.pid} called rt_sigreturn outside a handler")
        frame = p.frames.pop()
        p.blocked = signals.blockable(frame.restore_mask)
        # Linux restores the saved stack through do_sigaltstack; its errors are ignored.
        self._set_altstack(p, frame.saved_stack)
        return Done(0)

    @staticmethod
    def _flush(p: Process, drop) -> None:
        """Discard the pending signals `drop` selects, from both queues."""
        p.pending = [e for e in p.pending if not drop(e[0])]
        p.shared_pending = [e for e in p.shared_pending if not drop(e[0])]

    # -- interruption ------------------------------------------------------------------------

    @staticmethod
    def _interrupted(p: Process) -> bool:
        """Whether a signal would interrupt a sleep now (Linux: signal_pending)."""
        return p.doomed is not None or any(s not in p.blocked for s, _ in p.queued())

    @staticmethod
    def _interrupt(p: Process, call: str, kind: str, result: Done) -> Blocked:
        p.interruption = Interruption(call, kind, result)
        return BLOCKED

    @staticmethod
    def _restart(p: Process) -> None:
        p.interruption = None
        if p.saved_mask is not None:  # the call sets its mask again when repeated
            p.blocked, p.saved_mask = p.saved_mask, None

    # -- calls -------------------------------------------------------------------------------

    def _sigaction(self, p: Process, sig: Signal, handler: str, flags: Flags = Flags(),
                   mask: SigSet = SigSet()) -> Done:
        if not signals.actionable(sig, self.profile.max_signal):
            return Done(Errno("EINVAL"))
        old = p.actions.get(sig, DEFAULT)
        # Unknown raw flag bits are dropped (Linux >= 5.11); SIGKILL/SIGSTOP leave the mask.
        new = Action(handler, tuple(f for f in SA_FLAGS if f in flags.names),
                     signals.blockable(mask.signals))
        if new == DEFAULT:
            p.actions.pop(sig, None)
        else:
            p.actions[sig] = new
        if signals.ignores(new, sig):  # POSIX: a pending instance is discarded, blocked or not
            self._flush(p, lambda s: s == sig)
        return Done(0, (old.handler, old.flags, signals.canonical(old.mask)))

    def _sigprocmask(self, p: Process, how: str | int, sigset: SigSet) -> Done:
        if how not in MASK_HOWS:
            return Done(Errno("EINVAL"))
        old, given = p.blocked, frozenset(sigset.signals)
        new = {"SIG_BLOCK": old | given, "SIG_UNBLOCK": old - given, "SIG_SETMASK": given}[how]
        p.blocked = signals.blockable(new)
        return Done(0, (signals.canonical(old),))

    @staticmethod
    def _sigpending(p: Process) -> Done:
        return Done(0, (signals.canonical({s for s, _ in p.queued()} & p.blocked),))

    def _sigsuspend(self, p: Process, sigset: SigSet) -> Done | Blocked:
        self._apply_mask(p, sigset)
        return self._wait_for_signal(p, "sigsuspend")

    def _pause(self, p: Process) -> Done | Blocked:
        return self._wait_for_signal(p, "pause")

    def _wait_for_signal(self, p: Process, call: str) -> Blocked:
        if self._interrupted(p):
            return self._interrupt(p, call, "nohand", Done(Errno("EINTR")))
        return self._block(p, ("signal", p.pid))

    def _spin(self, p: Process) -> Blocked:
        # User code busy-waiting for a handler: it ends (with 0) once a frame was set up.
        if self._interrupted(p):
            return self._interrupt(p, "spin", "spin", Done(0))
        p.state, p.wchan = SPINNING, None
        return BLOCKED

    @staticmethod
    def _apply_mask(p: Process, sigset: SigSet | str) -> None:
        """Install a call's temporary mask (sigsuspend, ppoll) unless it is in place already."""
        if sigset != NO_MASK and p.saved_mask is None:
            p.saved_mask, p.blocked = p.blocked, signals.blockable(sigset.signals)

    # -- alternate stack ---------------------------------------------------------------------

    @staticmethod
    def _sp_on_altstack(p: Process) -> bool:
        """Whether the code running now has its stack pointer in the alternate-stack area."""
        return p.frames[-1].on_altstack if p.frames else False

    @staticmethod
    def _on_sig_stack(p: Process, sp_on_alt: bool) -> bool:
        # Linux's on_sig_stack: never with SS_AUTODISARM set, else sp within the enabled stack.
        return sp_on_alt and p.altstack.enabled and "SS_AUTODISARM" not in p.altstack.flags

    def _ss_flags(self, p: Process, sp_on_alt: bool) -> frozenset:
        """Linux's sas_ss_flags: SS_DISABLE, SS_ONSTACK or nothing."""
        if not p.altstack.enabled:
            return frozenset({"SS_DISABLE"})
        return frozenset({"SS_ONSTACK"}) if self._on_sig_stack(p, sp_on_alt) else frozenset()

    def _sigaltstack(self, p: Process, ss: Stack | None = None) -> Done:
        sp_on_alt = self._sp_on_altstack(p)
        flags = self._ss_flags(p, sp_on_alt)
        # Linux: sas_ss_flags(sp) | (sas_ss_flags & SS_FLAG_BITS): the flag shows even disabled
        if "SS_AUTODISARM" in p.altstack.flags:
            flags |= {"SS_AUTODISARM"}
        old = Stack(p.altstack.base, p.altstack.size, flags)
        if ss is not None:
            error = self._set_altstack(p, ss)
            if error is not None:
                return Done(Errno(error))
        return Done(0, (old,))

    def _set_altstack(self, p: Process, ss: Stack) -> str | None:
        """do_sigaltstack's checks, in Linux's order; the error name or None."""
        if self._on_sig_stack(p, self._sp_on_altstack(p)):
            return "EPERM"
        mode = ss.flags - {"SS_AUTODISARM"}
        if ss.bits or mode not in _SS_MODES:
            return "EINVAL"
        if ss == p.altstack:
            return None  # nothing to change
        if mode == {"SS_DISABLE"}:
            p.altstack = Stack(0, 0, ss.flags)
            return None
        if stack_too_small(ss.size):
            return "ENOMEM"
        p.altstack = ss
        return None
