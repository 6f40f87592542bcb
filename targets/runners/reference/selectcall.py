"""select on the kernel model's poll: fd_sets become pollfds, the answer becomes fd_sets again.

The model has poll, not select, so select (Linux's core_sys_select and do_select, fs/select.c)
is answered by translation. An fd in the read set is polled for POLLIN, one in the write set for
POLLOUT (both for an fd in both); the timeval becomes whole milliseconds (rounded up, noted)
and NULL means no timeout. An fd is ready for reading when poll reports POLLIN, POLLHUP or
POLLERR, for writing when it reports POLLOUT or POLLERR (Linux's POLLIN_SET and POLLOUT_SET);
the result is the number of ready bits, and each out set is rewritten with only its ready fds,
in whole longs up to nfds (the ABI's `fd_set` layout gives the long, `word`). POLLNVAL is
EBADF, which Linux returns before waiting too. The model's ppoll with no mask is what waits:
it is interrupted as select is (ERESTARTNOHAND: EINTR after a handler, restarted otherwise,
with the first deadline kept). The timeval gets the time left by the model's clock on every
return once it was read, as Linux's poll_select_finish writes it back (not for a zero
timeout).

Not modelled (ENOSYS, noted): a bit set in the except set (select tests POLLPRI only, and
poll would also wake on POLLHUP); nfds beyond an fd_set, or a set bit at or above
`limits.fd_table_min` (Linux ignores bits beyond its fd table, whose size the model does not
keep; below that size every set bit counts); a non-zero timeout that poll ends early for an fd
select does not count (a read end in the write set after its writers closed: poll reports
POLLHUP, select keeps waiting).
"""
from __future__ import annotations

from conformance.ir import NO_MASK, Flags, PollFd
from oracle.kernel import Done
from targets.runners.reference.outcomes import Return, s32

# fs/select.c: which revents make an fd ready in each set
READY = {"read": ("POLLIN", "POLLHUP", "POLLERR"), "write": ("POLLOUT", "POLLERR")}
EVENT = {"read": "POLLIN", "write": "POLLOUT"}


def fd_set_bytes(nfds: int, word: int) -> int:
    """How many bytes of an fd_set select reads and writes for `nfds` (whole longs)."""
    bits = 8 * word
    return -(-nfds // bits) * word


def set_bits(data: bytes) -> list[int]:
    """The fds set in an fd_set's bytes, lowest first."""
    value = int.from_bytes(data, "little")
    return [fd for fd in range(8 * len(data)) if value >> fd & 1]


class SelectCalls:
    """select of `syscalls.Syscalls` (see the module docstring)."""

    def _sys_select(self, proc, nfds, readfds, writefds, exceptfds, tvp, *_):
        micros = -1
        if tvp:  # Linux reads the timeout first
            try:
                micros = self._timeval(proc, tvp)
            except MemoryError:
                return self.fail("EFAULT")
            if micros is None:
                return self.fail("EINVAL")
        out = self._select(proc, s32(nfds), (("read", readfds), ("write", writefds),
                                             ("except", exceptfds)), micros)
        if not isinstance(out, Return):
            return out  # blocked (to be repeated) or gone
        start = self.select_started.pop(proc.pid, self.kernel.now)
        if micros > 0 and out != self.fail("ENOSYS"):
            # poll_select_finish: the time left goes back on every return (not for 0)
            left = max(0, micros - (self.kernel.now - start))
            self._store(proc, "timeval", tvp, sec=left // 1_000_000, usec=left % 1_000_000)
        return out

    def _select(self, proc, nfds: int, pointers: tuple, micros: int):
        """select after its timeout was read: the sets, the wait, the answer."""
        abi, cpu = self.abi, proc.cpu
        if nfds < 0:
            return self.fail("EINVAL")
        layout = abi.layouts["fd_set"]
        if nfds > 8 * layout.size:
            return self._unmodelled(proc, f"select with nfds {nfds} (more than an fd_set)")
        size = fd_set_bytes(nfds, layout.fields["word"][1])
        try:
            sets = {role: [fd for fd in set_bits(cpu.read(addr, size)) if fd < nfds]
                    for role, addr in pointers if addr}
        except MemoryError:
            return self.fail("EFAULT")
        if sets.get("except"):
            return self._unmodelled(proc, "select with fds in the except set")
        limit = abi.limits["fd_table_min"]
        if any(fd >= limit for fds in sets.values() for fd in fds):
            return self._unmodelled(proc, f"select of an fd at or above {limit} (Linux's "
                                          "answer depends on its fd table's size)")
        fds = sorted(set(sets.get("read", ())) | set(sets.get("write", ())))
        entries = tuple(PollFd(fd, Flags(tuple(EVENT[r] for r in ("read", "write")
                                               if fd in sets.get(r, ())))) for fd in fds)
        if self.kernel.procs[proc.pid].deadline is None:  # not a repeat: the wait starts
            self.select_started[proc.pid] = self.kernel.now
        timeout = -1 if micros < 0 else self._millis(proc, micros)
        result = self.kernel.syscall(proc.pid, "ppoll", (entries, timeout, NO_MASK))
        if not isinstance(result, Done) or not isinstance(result.value, int):
            return self.answer(result)
        if any("POLLNVAL" in r for r in result.outs):
            return self.fail("EBADF")
        ready = {role: [fd for fd, revents in zip(fds, result.outs)
                        if fd in sets[role] and set(revents) & set(READY[role])]
                 for role in ("read", "write") if role in sets}
        count = sum(len(v) for v in ready.values())
        if not count and result.value and timeout != 0:
            return self._unmodelled(proc, "select woken by an event it does not count "
                                          "(POLLHUP on an fd in the write set)")
        for role, addr in pointers:
            if addr:
                bits = sum(1 << fd for fd in ready.get(role, ()))
                cpu.write(addr, bits.to_bytes(size, "little"))
        return Return(count)

    def _timeval(self, proc, addr: int) -> int | None:
        """A timeval in µs as select takes it (usec >= 1 s carries into sec, as C's / and %
        do); None if invalid."""
        tv = self._struct(proc, "timeval", addr, signed=True)
        carry = int(tv["usec"] / 1_000_000)  # C division truncates toward zero
        sec, usec = tv["sec"] + carry, tv["usec"] - carry * 1_000_000
        if sec < 0 or usec < 0:
            return None
        return sec * 1_000_000 + usec

    def _unmodelled(self, proc, what: str):
        self.machine.note(f"pid {proc.pid}: {what} is not modelled: ENOSYS")
        return self.fail("ENOSYS")
