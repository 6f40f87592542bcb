"""Raw syscalls -> the kernel model's calls: signals, the alternate stack, timers, poll.

A mixin of `syscalls.Syscalls` (which supplies `call`, `fail`, `codec`, `kernel`, `machine`).
Structs are read and written through the ABI table's layouts. Durations reach the model in
whole milliseconds, as programs give them: a guest value that is not a whole number of
milliseconds is rounded up (and noted).
"""
from __future__ import annotations

from conformance.ir import MASK_HOWS, NO_MASK, POLL_EVENTS, SA_FLAGS, TIMERS, PollFd, SigSet
from oracle.kernel import Done
from oracle.signals import DEFAULT, DFL, HANDLER, IGN
from targets.runners.reference.outcomes import Return, s32 as _s32


class SignalCalls:
    """The signal, timer and poll calls of `syscalls.Syscalls`."""

    # -- helpers -----------------------------------------------------------------------------

    def _struct(self, proc, layout: str, addr: int, signed: bool = False) -> dict[str, int]:
        """Every field of a struct in guest memory."""
        lay = self.abi.layouts[layout]
        raw = proc.cpu.read(addr, lay.size)
        return {name: int.from_bytes(raw[off:off + size], "little", signed=signed)
                for name, (off, size) in lay.fields.items()}

    def _store(self, proc, layout: str, addr: int, **values: int) -> None:
        lay = self.abi.layouts[layout]
        for name, value in values.items():
            off, size = lay.fields[name]
            proc.cpu.put(addr + off, value, size)

    def _sigset_ok(self, size: int) -> bool:
        return size == self.codec.sigset_bytes

    def _millis(self, proc, micros: int) -> int:
        if micros % 1000:
            self.machine.note(f"pid {proc.pid}: {micros} µs rounded up to whole milliseconds")
        return -(-micros // 1000)

    def _signal_arg(self, sig: int):
        signal = self.codec.signal(_s32(sig))
        return None if signal == 0 else signal

    # -- actions and masks -------------------------------------------------------------------

    def _sys_rt_sigaction(self, proc, sig, act, oldact, size, *_):
        signal = self._signal_arg(sig)
        if not self._sigset_ok(size) or signal is None:
            return self.fail("EINVAL")
        signo = self.codec.signo(signal)
        restorer_bit = self.abi.flags["SA_RESTORER"]
        old_raw = proc.actions.get(signo, (0, 0, 0))

        def ok(result: Done) -> int:
            handler, flags, mask = result.outs
            if oldact:
                address = {DFL: self.abi.flags["SIG_DFL"], IGN: self.abi.flags["SIG_IGN"],
                           HANDLER: old_raw[0]}[handler]
                self._store(proc, "sigaction", oldact, handler=address,
                            flags=self.codec.bits(flags) | old_raw[1] & restorer_bit,
                            restorer=old_raw[2], mask=self.codec.sigbits(mask))
            if act:
                proc.actions[signo] = new_raw
            return 0
        if not act:
            # A query: the model has no call that only reads, so read its record.
            if not isinstance(signal, str) and not 32 <= signal <= self.kernel.profile.max_signal:
                return self.fail("EINVAL")
            old = self.kernel.procs[proc.pid].actions.get(signal, DEFAULT)
            return Return(ok(Done(0, (old.handler, old.flags, old.mask))))
        sa = self._struct(proc, "sigaction", act)
        address = sa["handler"]
        name = {self.abi.flags["SIG_DFL"]: DFL, self.abi.flags["SIG_IGN"]: IGN}.get(address,
                                                                                    HANDLER)
        flags = self.codec.flags(sa["flags"], SA_FLAGS)
        new_raw = (address, sa["flags"] & restorer_bit, sa["restorer"])
        mask = self.codec.sigset(sa["mask"])
        return self.call(proc, "sigaction", signal, name, flags, mask, ok=ok)

    def _sys_rt_sigprocmask(self, proc, how, new, old, size, *_):
        if not self._sigset_ok(size):
            return self.fail("EINVAL")

        def ok(result: Done) -> int:
            if old:
                proc.cpu.put(old, self.codec.sigbits(result.outs[0]), self.codec.sigset_bytes)
            return 0
        if not new:  # only reads the mask: blocking nothing changes nothing
            return self.call(proc, "sigprocmask", "SIG_BLOCK", SigSet(), ok=ok)
        sigset = self.codec.sigset(proc.cpu.u(new, self.codec.sigset_bytes))
        return self.call(proc, "sigprocmask", self.codec.choice(_s32(how), MASK_HOWS), sigset,
                         ok=ok)

    def _sys_rt_sigpending(self, proc, out, size, *_):
        if size > self.codec.sigset_bytes:
            return self.fail("EINVAL")

        def ok(result: Done) -> int:
            proc.cpu.put(out, self.codec.sigbits(result.outs[0]), size)
            return 0
        return self.call(proc, "sigpending", ok=ok)

    def _sys_rt_sigsuspend(self, proc, mask, size, *_):
        if not self._sigset_ok(size):
            return self.fail("EINVAL")
        sigset = self.codec.sigset(proc.cpu.u(mask, self.codec.sigset_bytes))
        return self.call(proc, "sigsuspend", sigset)

    def _sys_pause(self, proc, *_):
        return self.call(proc, "pause")

    def _sys_rt_sigreturn(self, proc, *_):
        return self.machine.sigreturn(proc)

    def _sys_sigaltstack(self, proc, new, old, *_):
        stack = None
        if new:
            ss = self._struct(proc, "stack_t", new)
            stack = self.codec.stack_in(ss["sp"],
                                        ss["flags"] & 0xFFFF_FFFF, ss["ss_size"])

        def ok(result: Done) -> int:
            if old:
                sp, flags, size = self.codec.stack_out(result.outs[0])
                self._store(proc, "stack_t", old, sp=sp, flags=flags, ss_size=size)
            return 0
        return self.call(proc, "sigaltstack", stack, ok=ok)

    # -- timers ------------------------------------------------------------------------------

    def _itimerval_out(self, proc, addr: int, left: int, interval: int) -> None:
        if addr:
            self._store(proc, "itimerval", addr, value_sec=left // 1_000_000,
                        value_usec=left % 1_000_000, interval_sec=interval // 1_000_000,
                        interval_usec=interval % 1_000_000)

    def _sys_setitimer(self, proc, which, new, old, *_):
        value = interval = 0
        if new:
            itv = self._struct(proc, "itimerval", new, signed=True)
            parts = (itv["value_sec"], itv["value_usec"], itv["interval_sec"],
                     itv["interval_usec"])
            if any(p < 0 for p in parts) or itv["value_usec"] >= 1_000_000 or \
                    itv["interval_usec"] >= 1_000_000:
                return self.fail("EINVAL")
            value = itv["value_sec"] * 1_000_000 + itv["value_usec"]
            interval = itv["interval_sec"] * 1_000_000 + itv["interval_usec"]
        timer = self.codec.choice(_s32(which), TIMERS)
        if proc.pid == self.machine.driver and timer == "ITIMER_REAL":
            self.machine.arm_watchdog(value, interval)

        def ok(result: Done) -> int:
            self._itimerval_out(proc, old, *result.outs)
            return 0
        return self.call(proc, "setitimer", timer, self._millis(proc, value),
                         self._millis(proc, interval), ok=ok)

    def _sys_getitimer(self, proc, which, out, *_):
        def ok(result: Done) -> int:
            self._itimerval_out(proc, out, *result.outs)
            return 0
        return self.call(proc, "getitimer", self.codec.choice(_s32(which), TIMERS), ok=ok)

    def _sys_alarm(self, proc, seconds, *_):
        return self.call(proc, "alarm", seconds & 0xFFFF_FFFF)

    def _timespec(self, proc, addr: int) -> int | None:
        """A timespec in µs (rounded up), or None if it is invalid."""
        ts = self._struct(proc, "timespec", addr, signed=True)
        if ts["sec"] < 0 or not 0 <= ts["nsec"] < 1_000_000_000:
            return None
        return ts["sec"] * 1_000_000 + -(-ts["nsec"] // 1000)

    def _sys_nanosleep(self, proc, req, rem, *_):
        micros = self._timespec(proc, req)
        if micros is None:
            return self.fail("EINVAL")
        result = self.kernel.syscall(proc.pid, "nanosleep", (self._millis(proc, micros),))
        if isinstance(result, Done) and result.outs and rem:
            left = result.outs[0]
            self._store(proc, "timespec", rem, sec=left // 1_000_000,
                        nsec=left % 1_000_000 * 1000)
        return self.answer(result)

    # -- poll --------------------------------------------------------------------------------

    def _pollfds(self, proc, addr: int, count: int) -> tuple[PollFd, ...]:
        lay = self.abi.layouts["pollfd"]
        entries = []
        for k in range(count):
            pfd = self._struct(proc, "pollfd", addr + k * lay.size, signed=True)
            entries.append(PollFd(pfd["fd"], self.codec.flags(pfd["events"] & 0xFFFF,
                                                              POLL_EVENTS)))
        return tuple(entries)

    def _revents(self, proc, addr: int):
        lay = self.abi.layouts["pollfd"]

        def ok(result: Done) -> int:
            for k, names in enumerate(result.outs):
                self._store(proc, "pollfd", addr + k * lay.size, revents=self.codec.bits(names))
            return result.value
        return ok

    def _sys_poll(self, proc, fds, nfds, timeout, *_):
        entries = self._pollfds(proc, fds, nfds)
        return self.call(proc, "poll", entries, _s32(timeout), ok=self._revents(proc, fds))

    def _sys_ppoll(self, proc, fds, nfds, tsp, sigmask, size, *_):
        entries = self._pollfds(proc, fds, nfds)
        timeout = -1
        if tsp:
            micros = self._timespec(proc, tsp)
            if micros is None:
                return self.fail("EINVAL")
            timeout = self._millis(proc, micros)
        mask = NO_MASK
        if sigmask:
            if not self._sigset_ok(size):
                return self.fail("EINVAL")
            mask = self.codec.sigset(proc.cpu.u(sigmask, self.codec.sigset_bytes))
        return self.call(proc, "ppoll", entries, timeout, mask, ok=self._revents(proc, fds))

