"""Lowering picks syscalls from the table; both emitters assemble every call."""
from __future__ import annotations

import pytest

from conformance.batch import build
from conformance.ir import CALLS
from conformance.lower import Rodata, Syscall, lower_program
from targets import tables

EVERY_CALL = '''\
r, w = pipe()
a, b = pipe2(O_NONBLOCK)
write(w, "x")
write(w, 5000)
read(r, 4)
d = dup(r)
e = dup2(r, d)
e = dup2(r, r)
close(d)
getpid()
getppid()
c = fork {
    kill(parent, 0)
    exit(2)
}
waitpid(c, WNOHANG)
wait4(-1)
kill(self, 0)
sigaction(SIGUSR1, handler, SA_SIGINFO|SA_RESTART, SIGUSR2)
sigaction(SIGUSR2, SIG_IGN)
sigprocmask(SIG_BLOCK, SIGUSR1)
sigpending()
sigsuspend(0)
pause()
sigaltstack(SIGSTKSZ, SS_AUTODISARM)
sigaltstack()
spin()
setpgid(c, c)
getpgid(0)
getpgrp()
kill(-c, 0)
kill(0, 0)
setitimer(ITIMER_REAL, 100, 10)
getitimer(ITIMER_VIRTUAL)
alarm(2)
nanosleep(5)
poll([r:POLLIN, w:POLLOUT], -1)
ppoll([r:POLLIN], 10, SIGUSR1)
probe read(r, 1)
exit(0)
'''


def syscalls(program, abi_name):
    ops = lower_program(program, 0, tables.load(abi_name), Rodata(0x400000))
    return [op.name for op in ops if isinstance(op, Syscall)]


def test_every_call_is_covered(parse):
    program = parse(EVERY_CALL)
    assert {op.call for op in program.body} | {"fork"} >= set(CALLS)


@pytest.mark.parametrize("abi_name", tables.known())
def test_every_call_assembles(parse, abi_name):
    batch = build([parse(EVERY_CALL)] * 3, tables.load(abi_name))
    assert len(batch.elf) > 1000 and "rt_record" in batch.listing


def test_aarch64_substitutes_come_from_the_table(parse):
    program = parse(EVERY_CALL)
    arm, x86 = syscalls(program, "linux-aarch64"), syscalls(program, "linux-x86_64")
    assert "pipe" in x86 and "pipe" not in arm and arm.count("pipe2") == 2
    assert "fork" in x86 and "clone" in arm
    assert "dup2" in x86 and "dup3" in arm and "fcntl" in arm  # dup2(fd, fd) keeps its meaning
    assert "wait4" in x86 and "wait4" in arm
    assert "poll" in x86 and "poll" not in arm and arm.count("ppoll") == 3  # poll, ppoll, pause
    assert "alarm" in x86 and arm.count("setitimer") == 2
    assert "getpgrp" in x86 and arm.count("getpgid") == 2


def test_write_payloads_are_shared_in_rodata(parse):
    rodata = Rodata(0x400000)
    lower_program(parse('r, w = pipe()\nwrite(w, "ab")\nwrite(w, "ab")\n'), 0,
                  tables.load("linux-x86_64"), rodata)
    assert bytes(rodata.blob).count(b"ab") == 1


def test_aarch64_reaches_the_state_area_through_its_base_register():
    from conformance.emit import emitter_for
    from conformance.lower import Memory, Syscall
    em = emitter_for(tables.load("linux-aarch64"))
    assert any("x28" in line for line in em.entry())  # set before _start, which follows
    assert em.store("x9", Memory.RET, 8) == ["str x9, [x28, #0x18]"]
    assert em.load_var("x9", Memory.WSTATUS, 4) == ["ldrsw x9, [x28, #0x28]"]
    # beyond the reach of a scaled offset: the address is built in full
    assert em.store("x9", Memory.ALTSTACK, 8)[-1] == "str x9, [x16]"
    # a probe fills x28 with its pattern: it is set back before the result is stored
    probe = em.translate(Syscall(172, (), "getpid", probe=True))
    trap, stored = probe.index("svc #0"), probe.index("str x0, [x28, #0x18]")
    base = em.load_imm("x28", Memory.BASE)
    assert any(probe[k:k + len(base)] == base for k in range(trap, stored))


@pytest.mark.parametrize("program, takes", [
    # After the timer's setitimer returns, before its record and the yield before the spin:
    # a handler that runs there (a stalled host) ends the spin instead of leaving it to wait
    # for another that never comes (generated/659, seed 0, hung on aarch64-qemu-user).
    ("sigaction(SIGALRM, handler)\nsetitimer(ITIMER_REAL, 5)\nspin()\n", "setitimer"),
    ("spin()\n", None),                         # nothing before it: the spin takes its own
    ("kill(self, 0)\nspin()\nspin()\n", "kill"),  # the second, after the first ends
])
def test_a_spin_counts_the_handlers_that_run_after_the_op_before_it(parse, program, takes):
    from conformance.lower import Faults, Label, Memory, Move, Record, Var
    micro = lower_program(parse(program), 0, tables.load("linux-x86_64"), Rodata(0x400000),
                          Faults(yield_between_ops=True))
    start = next(k for k, m in enumerate(micro) if isinstance(m, Syscall) and m.name == "getpid")
    micro = micro[start + 1:]  # process 0's own ops, after its setup
    snapshot = Move(Var(Memory.SPIN0), Var(Memory.HCOUNT))
    loops = [k for k, m in enumerate(micro) if isinstance(m, Label) and "_spin_" in m.name]
    taken = [k for k, m in enumerate(micro) if m == snapshot]
    assert len(taken) == len(loops)
    for taken_at, loop in zip(taken, loops):
        between = micro[taken_at:loop]
        if takes is None:
            assert between == [snapshot]
            continue
        assert any(isinstance(m, Record) for m in between)  # the op's record comes after
        assert any(isinstance(m, Syscall) and m.name == "sched_yield" for m in between)
    if takes is not None:
        before = [m.name for m in micro[:taken[0]] if isinstance(m, Syscall)]
        assert before[-1] == takes
