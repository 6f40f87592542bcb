"""A recorded syscall trace lifted to an IR Program.

Each process's calls (in the order they completed on the reference run) become ops of its
body; a fork's child body is the child's calls. Values become symbols by following where each
returned value flows: the fds a pipe (or dup) returned are named (`r1, w1 = pipe()`), and a
later call that passes one of them gets the name; pids from getpid and fork become `self`
and the child's name (`c1 = fork {...}`), the parent's pid `parent`. Buffers and sizes become
write payloads and read sizes; the structs the IR knows (sigaction, stack_t, itimerval,
timespec, pollfd) are decoded with the source ABI's layouts and re-encoded as IR operands.
select becomes `poll` (its fd_sets and timeval decoded with the ABI's `fd_set` and `timeval`
layouts) when every fd is in one set, the only case where the two count the same fds.
The original's output (writes to fd 1/2) becomes `write(1, "...")` with the same bytes, and
its exit code `exit(code)`.

What cannot be lifted is listed with its address, never silently dropped: calls the IR has no
op for (brk: the program break is an address, not comparable across targets), calls made inside the original's signal handlers (the ported program's handler is the
suite's recording handler), literal pids, the harness's fds. Checks the original made in
machine code after a call (`regcheck`) are classified: a register compared after the call
becomes a `probe` of that op when the ABI says the call preserves it; a memory check is
reported as a result the path relied on (data the call wrote) or as unliftable (state a signal
handler wrote).

The path: this is the one sequence of calls the reference run took. Every result that run
produced and the lifted program does not compute again is a result the path relied on; the
report lists every non-zero or error result, and `conformance.port.verify` compares them with
the oracle's prediction for the lifted program.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from conformance.ir import (
    DEFAULT_TAIL, MASK_HOWS, MAX_TRANSFER, NO_MASK, PARENT, PIPE_FLAGS, POLL_EVENTS, SA_FLAGS,
    SELF, SS_FLAGS, TIMERS, WAIT_FLAGS, Flags, Group, Op, PollFd, Program, Ref, Ret, SigSet,
    StackSize,
)
from conformance.port.record import CallRecord, Trace
from conformance.port.regcheck import Check, checks_after
from conformance.port.source import SourceElf
from conformance.syntax import STACK_LITERALS, format_op
from targets.runners.reference.codec import Codec
from targets.runners.reference.outcomes import s32
from targets.runners.reference.selectcall import EVENT

CONSOLE_FDS = (1, 2)


@dataclass(frozen=True)
class Unliftable:
    """Something of the original the program does not carry, and why."""

    pc: int
    what: str


class _Skip(Exception):
    """A call that cannot be lifted: the message says why."""


@dataclass
class Lifted:
    """The lifted program and the account of how it was made (see the module docstring)."""

    program: Program
    lifted: list[tuple[CallRecord, str]] = field(default_factory=list)
    symbolic: list[str] = field(default_factory=list)
    unliftable: list[Unliftable] = field(default_factory=list)
    relied: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pairs: list[tuple[int, int, CallRecord]] = field(default_factory=list)  # (lpid, op, call)
    lpid_of: dict[int, int] = field(default_factory=dict)  # source pid -> logical id
    console: bytes = b""  # what the lifted program writes to fd 1, in the original's order


@dataclass
class _Scope:
    """What one process's values mean: fd -> handle name, pid -> process operand."""

    pid: int
    lpid: int
    fds: dict[int, str]
    pids: dict[int, object]
    actions: dict[int, tuple]  # signo -> (handler operand, flags, mask) as last installed

    def child(self, pid: int, lpid: int, parent_name_pid: int) -> "_Scope":
        pids = {k: v for k, v in self.pids.items() if v not in (SELF, PARENT)}
        pids[pid], pids[parent_name_pid] = SELF, PARENT
        return _Scope(pid, lpid, dict(self.fds), pids, dict(self.actions))


class _Lifter:
    def __init__(self, trace: Trace, source: SourceElf):
        self.trace, self.source, self.abi = trace, source, trace.abi
        self.codec = Codec(self.abi)
        self.out = Lifted(Program(()))
        self.counter = {"pipe": 0, "dup": 0, "fork": 0}
        self.op_index = 0
        self.next_lpid = 1
        self.handler_addrs: dict[int, int] = {}  # signo -> original handler address
        self.console: list[tuple[int, bytes]] = []  # (call seq, bytes) of writes to fd 1

    # -- processes ---------------------------------------------------------------------------

    def lift(self) -> Lifted:
        pid = self.trace.program_pid
        scope = _Scope(pid, 0, {}, {pid: SELF}, {})
        self.out.lpid_of[pid] = 0
        body = self.body(scope)
        status = self.trace.run.status
        if status is not None and status.how != "exited":
            faults = [n for n in self.trace.run.notes if n.startswith(f"pid {pid}:")]
            self.out.unliftable.append(Unliftable(0, (
                f"the test ended {status}, not by a call"
                + (f" ({'; '.join(faults)})" if faults else "")
                + ": the ported program ends with exit(0) where the recorded calls end")))
        self.out.console = b"".join(data for _, data in sorted(self.console))
        doc = [f"Ported by `conformance port` from {self.source.path} "
               f"(--from-abi {self.source.abi_alias}, table {self.abi.name}).",
               "The call sequence is the one the original took on the reference machine."]
        self.out.program = Program(tuple(body), "\n".join(doc), Path(self.source.path).stem)
        return self.out

    def body(self, scope: _Scope) -> list[Op]:
        ops: list[Op] = []
        for call in self.trace.of(scope.pid):
            if call.depth > 0:
                self.in_handler(call)
                continue
            try:
                op = self.op(call, scope)
            except _Skip as why:
                self.out.unliftable.append(Unliftable(call.pc, f"{call.describe(self.abi)}: "
                                                                f"{why}"))
                continue
            if op is None:
                continue
            op = self.with_checks(op, call)
            index = self.op_index
            self.op_index += 1
            if call.result is not None:  # exit's end is the harness's record, not a call's
                self.out.pairs.append((scope.lpid, index, call))
            self.out.lifted.append((call, format_op(op)[0].strip()))
            if op.call == "fork":
                child = call.result
                lpid = self.next_lpid
                self.next_lpid += 1
                self.out.lpid_of[child] = lpid
                scope.pids[child] = Ref(op.binds[0])
                inner = scope.child(child, lpid, scope.pid)
                op = Op("fork", (), op.binds, tuple(self.body(inner)))
            ops.append(op)
            self.rely(call, op)
            if op.call == "write" and op.args[0] == 1:
                self.console.append((call.seq, op.args[1]))
        return ops

    def in_handler(self, call: CallRecord) -> None:
        if call.name == "rt_sigreturn":
            return  # the handler's return: the recording handler returns the same way
        self.out.unliftable.append(Unliftable(call.pc, (
            f"{call.describe(self.abi)}: made inside a signal handler; the ported program's "
            "handler is the suite's recording handler (it records the signal instead)")))

    # -- one call ----------------------------------------------------------------------------

    def op(self, call: CallRecord, scope: _Scope) -> Op | None:
        if not call.modelled or call.name is None:
            raise _Skip("the reference machine does not model this call (ENOSYS); the IR has "
                        "no op for it")
        lifter = getattr(self, "_" + call.name, None)
        if lifter is None:
            raise _Skip(f"the IR has no op for {call.name}")
        return lifter(call, scope)

    def with_checks(self, op: Op, call: CallRecord) -> Op:
        after = call.pc + _trap_length(self.abi)
        code = self.source.code_at(after, 16 * 12)
        probe = False
        for check in checks_after(code, after, self.abi.result_reg):
            where = f"{check.addr:#x} ({check.text}) after {call.name} at {call.pc:#x}"
            if check.kind == "result":
                self.out.checks.append(f"result check at {where}: the path relied on the "
                                       "result (listed below if it was not 0)")
            elif check.kind == "register":
                kept = [r for r in check.regs if r in self.abi.probe_gprs]
                lost = [r for r in check.regs if r not in self.abi.probe_gprs]
                if lost or op.call in ("exit", "fork"):
                    self.out.unliftable.append(Unliftable(check.addr, (
                        f"register check {check.text} after {call.name} at {call.pc:#x}: "
                        f"{', '.join(lost) or 'this call'} cannot be probed (the IR's probe "
                        f"checks {', '.join(self.abi.probe_gprs)} across calls that return)")))
                    continue
                probe = True
                self.out.checks.append(f"register check at {where}: relies on "
                                       f"{', '.join(kept)} surviving the call -> lifted as "
                                       "`probe` (every register the ABI says the call "
                                       "preserves is filled and checked)")
            elif call.outputs:
                self.out.checks.append(f"memory check at {where}: relies on what the call "
                                       "wrote (" + ", ".join(b.role for b in call.outputs)
                                       + "; listed below)")
            else:
                self.out.unliftable.append(Unliftable(check.addr, (
                    f"memory check {check.text} after {call.name} at {call.pc:#x}: the call "
                    "wrote no memory, so this tests state the program or a signal handler "
                    "wrote; the ported program records handler runs instead")))
        if probe:
            return Op(op.call, op.args, op.binds, op.body, probe=True)
        return op

    # -- operands ----------------------------------------------------------------------------

    def fd(self, value: int, scope: _Scope, call: CallRecord, console_ok: bool = False):
        fd = s32(value)
        if fd in scope.fds:
            name = scope.fds[fd]
            self.out.symbolic.append(f"{call.pc:#x} {call.name}: fd {fd} -> {name}")
            return Ref(name)
        if fd in CONSOLE_FDS and console_ok:
            return fd
        if 0 <= fd < 3:
            raise _Skip(f"fd {fd} belongs to the harness in the ported program (only writes "
                        "to fds 1 and 2 are carried over, as output)")
        self.out.symbolic.append(f"{call.pc:#x} {call.name}: fd {fd} kept literal (no call "
                                 "returned it)")
        return fd

    def proc(self, value: int, scope: _Scope, call: CallRecord, *, zero_ok: bool,
             group_ok: bool = False, any_ok: bool = False):
        pid = s32(value)
        if pid in scope.pids:
            target = scope.pids[pid]
            self.out.symbolic.append(f"{call.pc:#x} {call.name}: pid {pid} -> "
                                     f"{target.name if isinstance(target, Ref) else target}")
            return target if isinstance(target, Ref) else Ref(target)
        if pid == 0 and zero_ok:
            return 0
        if pid == -1 and any_ok:
            return -1
        if pid < -1 and group_ok and -pid in scope.pids:
            target = scope.pids[-pid]
            name = target.name if isinstance(target, Ref) else target
            self.out.symbolic.append(f"{call.pc:#x} {call.name}: pgid {-pid} -> -{name}")
            return Group(name)
        raise _Skip(f"pid {pid} is no process the program created (literal pids could name a "
                    "host process)")

    def signal(self, value: int, call: CallRecord):
        number = s32(value)
        if number == 0:
            return 0
        name = self.abi.signal_name(number)
        if name is not None:
            return name
        if 32 <= number <= 64:
            return number
        raise _Skip(f"signal {number} is not a signal of {self.abi.name}")

    def flags(self, value: int, family, call: CallRecord, what: str) -> Flags:
        named = self.codec.flags(value, family)
        if named.bits:
            self.out.notes.append(f"{call.pc:#x} {call.name}: {what} bits {named.bits:#x} "
                                  "have no name: kept as raw bits")
        return named

    def sigset(self, bits: int) -> SigSet:
        return self.codec.sigset(bits)

    def millis(self, micros: int, call: CallRecord, what: str) -> int:
        if micros % 1000:
            self.out.notes.append(f"{call.pc:#x} {call.name}: {what} {micros} us rounded up to "
                                  "whole milliseconds (the IR's unit)")
        return -(-micros // 1000)

    # -- the calls ---------------------------------------------------------------------------

    def _pipe(self, call, scope, flags=None):
        if call.result != 0 or call.output("fds") is None:
            raise _Skip("a failed pipe binds nothing the program could use")
        self.counter["pipe"] += 1
        n = self.counter["pipe"]
        names = (f"r{n}", f"w{n}")
        fds = call.output("fds")
        for k, name in enumerate(names):
            fd = fds.field("value", k)
            scope.fds[fd] = name
            self.out.symbolic.append(f"{call.pc:#x} {call.name}: returned fd {fd} -> {name}")
        if flags is None:
            return Op("pipe", (), names)
        return Op("pipe2", (flags,), names)

    def _pipe2(self, call, scope):
        return self._pipe(call, scope, self.flags(s32(call.args[1]), PIPE_FLAGS, call,
                                                  "pipe2 flag"))

    def _read(self, call, scope):
        count = call.args[2]
        if count > MAX_TRANSFER:
            raise _Skip(f"a read of {count} bytes (the IR reads at most {MAX_TRANSFER})")
        return Op("read", (self.fd(call.args[0], scope, call), count))

    def _write(self, call, scope):
        buf = call.input("buf")
        if buf is None or not buf.data:
            raise _Skip("a write of no bytes, or from unreadable memory")
        if len(buf.data) > MAX_TRANSFER:
            raise _Skip(f"a write of {len(buf.data)} bytes (the IR writes at most "
                        f"{MAX_TRANSFER})")
        fd = self.fd(call.args[0], scope, call, console_ok=True)
        if fd in CONSOLE_FDS:
            self.out.symbolic.append(f"{call.pc:#x} write: output to fd {fd} kept as it is "
                                     f"({len(buf.data)} bytes): the expectation")
        return Op("write", (fd, buf.data))

    def _close(self, call, scope):
        fd = self.fd(call.args[0], scope, call)
        if call.result == 0:
            scope.fds.pop(s32(call.args[0]), None)
        return Op("close", (fd,))

    def _dup(self, call, scope):
        old = self.fd(call.args[0], scope, call)
        return self._bind_dup(call, scope, Op("dup", (old,)))

    def _dup2(self, call, scope):
        old = self.fd(call.args[0], scope, call)
        new = s32(call.args[1])
        if new in scope.fds and new != s32(call.args[0]):
            new_operand = Ref(scope.fds[new])
        elif 0 <= new < 3:
            raise _Skip(f"dup2 onto fd {new}, which belongs to the harness")
        else:
            new_operand = new
        return self._bind_dup(call, scope, Op("dup2", (old, new_operand)))

    def _dup3(self, call, scope):
        if s32(call.args[2]) != 0 or s32(call.args[0]) == s32(call.args[1]):
            raise _Skip("dup3 with flags or onto the same fd has no IR op (dup2 differs)")
        self.out.notes.append(f"{call.pc:#x} dup3(old, new, 0) lifted as dup2 (the same call "
                              "when old != new)")
        return self._dup2(call, scope)

    def _bind_dup(self, call, scope, op: Op) -> Op:
        if call.result is not None and call.result >= 0:
            self.counter["dup"] += 1
            name = f"d{self.counter['dup']}"
            scope.fds[call.result] = name
            self.out.symbolic.append(f"{call.pc:#x} {call.name}: returned fd {call.result} "
                                     f"-> {name}")
            return Op(op.call, op.args, (name,))
        return op

    def _getpid(self, call, scope):
        return Op("getpid")

    def _getppid(self, call, scope):
        return Op("getppid")

    def _getpgrp(self, call, scope):
        return Op("getpgrp")

    def _getpgid(self, call, scope):
        return Op("getpgid", (self.proc(call.args[0], scope, call, zero_ok=True),))

    def _setpgid(self, call, scope):
        return Op("setpgid", (self.proc(call.args[0], scope, call, zero_ok=True),
                              self.proc(call.args[1], scope, call, zero_ok=True)))

    def _fork(self, call, scope):
        if call.result is None or call.result <= 0:
            raise _Skip("a failed fork")
        self.counter["fork"] += 1
        return Op("fork", (), (f"c{self.counter['fork']}",), ())

    def _clone(self, call, scope):
        if call.args[0] != self.abi.flags["CLONE_SIGCHLD"] or call.args[1]:
            raise _Skip("clone other than fork's clone(SIGCHLD, 0)")
        return self._fork(call, scope)

    def _wait(self, call, scope, name, rusage=0):
        target = self.proc(call.args[0], scope, call, zero_ok=False, any_ok=True)
        if rusage:
            self.out.notes.append(f"{call.pc:#x} {call.name}: the rusage pointer is dropped")
        flags = self.flags(s32(call.args[2]), WAIT_FLAGS, call, "wait option")
        return Op(name, (target, flags))

    def _wait4(self, call, scope):
        return self._wait(call, scope, "wait4", call.args[3])

    def _waitpid(self, call, scope):
        return self._wait(call, scope, "waitpid")

    def _kill(self, call, scope):
        target = self.proc(call.args[0], scope, call, zero_ok=True, group_ok=True)
        return Op("kill", (target, self.signal(call.args[1], call)))

    def _exit_group(self, call, scope):
        return Op("exit", (s32(call.args[0]) & 0xFF,))

    _exit = _exit_group

    def _rt_sigaction(self, call, scope):
        signal = self.signal(call.args[0], call)
        if signal == 0:
            raise _Skip("sigaction of signal 0")
        if call.args[3] != self.codec.sigset_bytes:
            raise _Skip(f"sigsetsize {call.args[3]} (the IR's sigaction passes the kernel's "
                        f"{self.codec.sigset_bytes})")
        signo = self.codec.signo(signal)
        act = call.input("act")
        if act is None:
            current = scope.actions.get(signo, ("SIG_DFL", Flags(), SigSet()))
            self.out.notes.append(f"{call.pc:#x} rt_sigaction(act = NULL), a query, lifted as "
                                  "re-installing the action in force (the IR's sigaction "
                                  "always sets one)")
            handler, flags, mask = current
        else:
            address = act.field("handler")
            restorer = self.abi.flags["SA_RESTORER"]
            raw_flags = act.field("flags") & ~restorer
            flags = self.flags(raw_flags, SA_FLAGS, call, "sa_flags")
            mask = self.sigset(act.field("mask"))
            handler = {self.abi.flags["SIG_DFL"]: "SIG_DFL",
                       self.abi.flags["SIG_IGN"]: "SIG_IGN"}.get(address, "handler")
            if handler == "handler":
                self.handler_addrs[signo] = address
                self.out.symbolic.append(
                    f"{call.pc:#x} rt_sigaction: handler {address:#x} -> `handler` (the "
                    "recording handler; the original's body is not carried over)")
                note = getattr(self.trace, "frame_note", "")
                if note:
                    self.out.notes.append(f"{call.pc:#x} {note}")
            scope.actions[signo] = (handler, flags, mask)
        return Op("sigaction", (signal, handler, flags, mask))

    def _rt_sigprocmask(self, call, scope):
        if call.args[3] != self.codec.sigset_bytes:
            raise _Skip(f"sigsetsize {call.args[3]}")
        new = call.input("set")
        if new is None:
            self.out.notes.append(f"{call.pc:#x} rt_sigprocmask(set = NULL), a query, lifted "
                                  "as sigprocmask(SIG_BLOCK, 0)")
            return Op("sigprocmask", ("SIG_BLOCK", SigSet()))
        how = self.codec.choice(s32(call.args[0]), MASK_HOWS)
        return Op("sigprocmask", (how, self.sigset(new.field("bits"))))

    def _rt_sigpending(self, call, scope):
        if call.args[1] > self.codec.sigset_bytes:
            raise _Skip(f"sigsetsize {call.args[1]}")
        return Op("sigpending")

    def _rt_sigsuspend(self, call, scope):
        mask = call.input("mask")
        if mask is None or call.args[1] != self.codec.sigset_bytes:
            raise _Skip("sigsuspend without a readable 8-byte mask")
        return Op("sigsuspend", (self.sigset(mask.field("bits")),))

    def _pause(self, call, scope):
        return Op("pause")

    def _rt_sigreturn(self, call, scope):
        raise _Skip("rt_sigreturn outside a signal handler")

    def _sigaltstack(self, call, scope):
        ss = call.input("ss")
        if ss is None:
            return Op("sigaltstack", DEFAULT_TAIL["sigaltstack"])
        flags = self.flags(ss.field("flags") & 0xFFFF_FFFF, SS_FLAGS, call, "ss_flags")
        size = self.stack_size(ss.field("ss_size"), call)
        self.out.symbolic.append(f"{call.pc:#x} sigaltstack: ss_sp {ss.field('sp'):#x} -> the "
                                 "harness's alternate-stack region")
        return Op("sigaltstack", (size, flags))

    def stack_size(self, size: int, call: CallRecord):
        limits = self.abi.limits
        for name in ("SIGSTKSZ", "MINSIGSTKSZ"):
            delta = size - limits[name]
            if -16 <= delta <= 0:
                value = StackSize(name, delta)
                text = name + (str(delta) if delta else "")
                self.out.symbolic.append(f"{call.pc:#x} sigaltstack: ss_size {size} -> {text}")
                return value
        if any(size in r for r in STACK_LITERALS):
            return size
        name = "SIGSTKSZ" if size >= limits["SIGSTKSZ"] else "MINSIGSTKSZ"
        self.out.symbolic.append(f"{call.pc:#x} sigaltstack: ss_size {size} means different "
                                 f"things per ABI -> {name} (the nearest constant below it)")
        return StackSize(name)

    def _setitimer(self, call, scope):
        new = call.input("new")
        if new is None:
            raise _Skip("setitimer without a new value")
        which = self.codec.choice(s32(call.args[0]), TIMERS)
        value = new.field("value_sec") * 1_000_000 + new.field("value_usec")
        interval = new.field("interval_sec") * 1_000_000 + new.field("interval_usec")
        if value < 0 or interval < 0:
            raise _Skip("a negative timer value")
        return Op("setitimer", (which, self.millis(value, call, "value"),
                                self.millis(interval, call, "interval")))

    def _getitimer(self, call, scope):
        return Op("getitimer", (self.codec.choice(s32(call.args[0]), TIMERS),))

    def _alarm(self, call, scope):
        return Op("alarm", (call.args[0] & 0xFFFF_FFFF,))

    def _nanosleep(self, call, scope):
        req = call.input("req")
        if req is None:
            raise _Skip("nanosleep without a readable timespec")
        micros = req.field("sec") * 1_000_000 + -(-req.field("nsec") // 1000)
        return Op("nanosleep", (self.millis(micros, call, "duration"),))

    def pollfds(self, call, scope) -> tuple:
        fds = call.input("fds")
        entries = []
        for k in range(len(fds.fields) if fds else 0):
            fd = self.fd(fds.field("fd", k), scope, call)
            events = self.flags(fds.field("events", k) & 0xFFFF, POLL_EVENTS, call, "events")
            entries.append(PollFd(fd, events))
        return tuple(entries)

    def _poll(self, call, scope):
        timeout = s32(call.args[2])
        return Op("poll", (self.pollfds(call, scope), max(timeout, -1)))

    def _ppoll(self, call, scope):
        ts = call.input("timeout")
        timeout = -1
        if ts is not None:
            micros = ts.field("sec") * 1_000_000 + -(-ts.field("nsec") // 1000)
            timeout = self.millis(micros, call, "timeout")
        mask = call.input("mask")
        return Op("ppoll", (self.pollfds(call, scope), timeout,
                            self.sigset(mask.field("bits")) if mask else NO_MASK))

    def _select(self, call, scope):
        err = call.errno(self.abi)
        if err not in (None, "EINTR"):
            raise _Skip(f"select failed with {err}, which poll would not (a closed fd is "
                        "POLLNVAL there, not EBADF)")
        if any(call.args[k] and call.input(role) is None for k, role in
               ((1, "readfds"), (2, "writefds"), (3, "exceptfds"), (4, "timeout"))):
            raise _Skip("select with an argument it could not read")
        if call.input("exceptfds") is not None and call.input("exceptfds").fields:
            raise _Skip("fds in the except set (select's POLLPRI test has no poll equivalent: "
                        "poll also wakes on POLLHUP)")
        entries = select_entries(call)
        fds = [fd for fd, _ in entries]
        both = sorted({fd for fd in fds if fds.count(fd) > 1})
        if both:
            raise _Skip(f"fd {both[0]} is in both the read and the write set: select counts "
                        "a ready fd once per set, poll once, so poll is not equivalent")
        timeout = -1
        tv = call.input("timeout")
        if tv is not None:
            micros = tv.field("sec") * 1_000_000 + tv.field("usec")
            if micros < 0:
                raise _Skip("a negative select timeout")
            timeout = self.millis(micros, call, "timeout")
            if micros:
                self.out.notes.append(f"{call.pc:#x} select: the time left it writes back to "
                                      "the timeval is not carried (poll has none)")
        pollfds = tuple(PollFd(self.fd(fd, scope, call), Flags((EVENT[role],)))
                        for fd, role in entries)
        self.out.notes.append(
            f"{call.pc:#x} select lifted as poll: every fd is in one set, so select's result "
            "(the ready bits of its out sets) counts the fds poll counts (those with revents): "
            "a read-set fd is ready on POLLIN, POLLHUP or POLLERR, a write-set fd on POLLOUT "
            "or POLLERR; the out sets are compared with the predicted revents. Not the same "
            "for a read end in the write set once its writers closed (POLLHUP: poll counts "
            "it, select does not); the expectation check would show that")
        return Op("poll", (pollfds, timeout))

    def _brk(self, call, scope):
        raise _Skip(f"the IR has no op for the program break (brk returned {call.result:#x}, "
                    "an address, which differs per target and per run); the ported program "
                    "keeps the rest, and its buffers are the harness's own")

    # -- what the path relied on ---------------------------------------------------------------

    def rely(self, call: CallRecord, op: Op) -> None:
        where = f"{call.pc:#x} {format_op(op)[0].strip()}"
        if op.spec.ret is Ret.PID and call.errno(self.abi) is None:
            self.out.symbolic.append(f"{call.pc:#x} {call.name}: returned pid {call.result} "
                                     f"-> {self.pid_name(call)}")
        elif call.result is not None and call.result != 0:
            err = call.errno(self.abi)
            self.out.relied.append(f"{where}: returned "
                                   + (f"-{err}" if err else str(call.result)))
        for buf in call.outputs:
            if buf.role == "fds" and call.name in ("pipe", "pipe2"):
                continue  # named, not relied on
            if buf.role == "buf":
                self.out.relied.append(f"{where}: read {buf.data[:32]!r}")
            elif buf.role == "status":
                from conformance.compare import decode_linux_wait_status
                status = decode_linux_wait_status(buf.field("value"), self.abi)
                self.out.relied.append(f"{where}: wait status {status}")
            elif buf.layout == "fd_set":
                fds = ", ".join(str(dict(e)["fd"]) for e in buf.fields)
                self.out.relied.append(f"{where}: {buf.role} out = {{{fds}}}")
            elif buf.fields:
                fields = "; ".join(", ".join(f"{k}={hex(v) if v >= 0x10000 else v}"
                                             for k, v in element)
                                   for element in buf.fields)
                self.out.relied.append(f"{where}: {buf.role} = {fields}")


    def pid_name(self, call: CallRecord) -> str:
        """What a returned pid stands for in the program (as the records name pids)."""
        lpid = self.out.lpid_of.get(call.result)
        if call.result == self.trace.driver_pid:
            return "the harness (the test's parent)"
        return f"p{lpid}" if lpid is not None else "a process outside the program"


def select_entries(call: CallRecord) -> list[tuple[int, str]]:
    """(fd, "read" | "write") for every fd a recorded select asked about, lowest fd first: the
    pollfds it is lifted to, in their order."""
    entries = []
    for role, name in (("readfds", "read"), ("writefds", "write")):
        buf = call.input(role)
        entries += [(dict(element)["fd"], name) for element in (buf.fields if buf else ())]
    return sorted(entries)


def _trap_length(abi) -> int:
    from targets.runners.reference.isa import isa_for
    return isa_for(abi.isa).trap(abi.trap).length


def lift(trace: Trace, source: SourceElf) -> Lifted:
    """Lift a recorded trace of `source` (see the module docstring)."""
    return _Lifter(trace, source).lift()


__all__ = ["Lifted", "Unliftable", "lift", "Check"]
