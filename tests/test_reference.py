"""The reference machine (targets/runners/reference): unicorn running the suite's real ELFs with
the oracle's kernel model answering every syscall. Unit tests (loader, trap decoding, signal
frames against the ABI tables, conversions), then the corpora end to end against the oracle,
and the mutation proofs of tests/test_e2e_signals.py on the reference targets."""
from __future__ import annotations

import pytest

pytest.importorskip("unicorn", reason="the reference machine needs unicorn (pip install unicorn)")

from conformance.batch import IMAGE_BASE, RUNTIME_AT, build, link, rodata_after
from conformance.check import check
from conformance.cli import load_corpus
from conformance.compare import AGREES, DIVERGES, HUNG, decode_linux_wait_status
from conformance.events import WaitStatus
from conformance.ir import SigSet, StackSize
from conformance.lower import Faults, Imm, Label, Memory, Move, Syscall, Var
from conformance.runtime import runtime_for
from e2e import assert_caught_exactly, disagreements
from oracle import predict
from targets.runners import RUNNERS, TargetError, get
from targets.runners.reference import ReferenceRunner
from targets.runners.reference.codec import Codec
from targets.runners.reference.cpu import Cpu
from targets.runners.reference.frames import Delivery, builder_for
from targets.runners.reference.isa import ISAS, isa_for
from targets.runners.reference.machine import Machine
from targets.tables import load
from test_e2e_signals import FORGOTTEN, probes_spanning_a_handler, shows_sa_onstack

ABIS = ("linux-x86_64", "linux-aarch64")
REF_TARGETS = ("x86_64-ref", "aarch64-ref")


def tiny_elf(abi, ops) -> bytes:
    """A static ELF running `ops` (micro-ops, emitted for the ABI) from `_start`."""
    runtime = runtime_for(abi, address=RUNTIME_AT)
    return link([Label("_start")] + list(ops), abi, runtime, rodata_after(runtime))[1]


def call(abi, name, *args) -> Syscall:
    return Syscall(abi.nr(name), tuple(Imm(a) if isinstance(a, int) else a for a in args), name)


def hello_then_exit_with(abi, nr: int) -> bytes:
    """write(1, "hello\\n"), then raw syscall `nr`, then exit_group(its result)."""
    return tiny_elf(abi, [
        Syscall(abi.nr("getpid"), (), "getpid"),  # any call: the machine starts in the model
        Move(Var(Memory.READBUF), Imm(int.from_bytes(b"hello\n\0\0", "little"))),
        call(abi, "write", 1, Memory.READBUF, 6),
        Syscall(nr, (), "raw"),
        call(abi, "exit_group", Var(Memory.RET)),
    ])


# -- loader and CPU ------------------------------------------------------------------------

@pytest.mark.parametrize("abi_name", ABIS)
def test_the_loader_maps_the_segment_zero_filled_and_a_stack(abi_name):
    abi = load(abi_name)
    elf = build(load_corpus("basic")[:1], abi).elf
    isa = isa_for(abi.isa)
    cpu = Cpu.load(elf, isa, isa.trap(abi.trap))
    assert cpu.read(IMAGE_BASE, len(elf)) == elf  # one segment: headers and payload from 0
    assert cpu.read(Memory.BASE, 64) == bytes(64) and cpu.mapped(Memory.END - 8, 8)
    assert not cpu.mapped(Memory.END, 8)
    assert cpu.get(isa.pc) == int.from_bytes(elf[24:32], "little")  # e_entry
    sp = cpu.get(isa.sp)
    assert sp % 16 == 0 and cpu.mapped(sp - 4096, 4096 + 32)


@pytest.mark.parametrize("abi_name", ABIS)
def test_fork_copies_memory_and_registers_then_they_part(abi_name):
    abi = load(abi_name)
    isa = isa_for(abi.isa)
    cpu = Cpu.load(build(load_corpus("basic")[:1], abi).elf, isa, isa.trap(abi.trap))
    cpu.put(Memory.BASE, 0x1234)
    cpu.set(abi.arg_regs[0], 77)
    cpu.set(isa.simd[3], 5 << 100)
    child = cpu.fork()
    assert child.u(Memory.BASE) == 0x1234 and child.get(abi.arg_regs[0]) == 77
    assert child.get(isa.simd[3]) == 5 << 100
    child.put(Memory.BASE, 1)
    child.set(abi.arg_regs[0], 1)
    assert cpu.u(Memory.BASE) == 0x1234 and cpu.get(abi.arg_regs[0]) == 77


def test_every_isa_of_the_machine_has_an_emitter_and_a_table():
    known = {load(name).isa for name in ("linux-x86_64", "linux-aarch64")}
    assert set(ISAS) == known
    with pytest.raises(ValueError, match="supported: x86_64, aarch64"):
        isa_for("riscv64")


# -- syscalls ------------------------------------------------------------------------------

@pytest.mark.parametrize("abi_name", ABIS + ("breenix-legacy-x86_64", "breenix-legacy-aarch64"))
def test_calls_are_decoded_through_the_abi_table_and_unknown_ones_are_enosys(abi_name):
    """Numbers, registers and the trap come from the table: Breenix's int 0x80 and its own
    numbering (write = 1, exit = 0) run as well as Linux's."""
    abi = load(abi_name)
    result = Machine(hello_then_exit_with(abi, 4000), abi).run(10)
    assert result.stdout == b"hello\n"
    assert result.exit_code == -abi.errno["ENOSYS"] & 0xFF
    assert any("syscall 4000" in n and "ENOSYS" in n for n in result.notes)
    assert not result.timed_out and result.incident == ""


@pytest.mark.parametrize("abi_name", ABIS)
def test_a_known_call_returns_the_model_answer(abi_name):
    abi = load(abi_name)
    result = Machine(hello_then_exit_with(abi, abi.nr("getppid")), abi).run(10)
    assert result.exit_code == 0  # the driver's parent is outside the model: pid 0


def test_a_trap_instruction_the_abi_does_not_use_faults():
    """`syscall` in an int-0x80 ABI (Breenix) is no syscall: the process dies of SIGILL."""
    linux, breenix = load("linux-x86_64"), load("breenix-legacy-x86_64")
    assert linux.trap != breenix.trap and linux.isa == breenix.isa
    result = Machine(hello_then_exit_with(linux, 4000), breenix).run(10)
    assert result.stdout == b"" and "SIGILL" in result.incident


@pytest.mark.parametrize("abi_name", ABIS)
def test_a_run_is_bounded_by_wall_clock_and_by_an_instruction_budget(abi_name):
    abi = load(abi_name)
    elf = build(load_corpus("signals")[76:77], abi).elf  # 077-itimer-virtual-spin: it spins
    late = Machine(elf, abi).run(0)
    assert late.timed_out and "wall-clock timeout" in late.incident
    poor = Machine(elf, abi).run(60, budget=0)
    assert poor.timed_out and "budget exhausted" in poor.incident and poor.slices == 1
    rich = Machine(elf, abi).run(60)
    assert not rich.timed_out and rich.slices >= 1 and rich.exit_code == 0


@pytest.mark.parametrize("abi_name", ABIS)
def test_a_run_is_deterministic(abi_name):
    abi = load(abi_name)
    elf = build(load_corpus("signals")[25:45], abi).elf
    first, second = Machine(elf, abi).run(60), Machine(elf, abi).run(60)
    assert first.stdout == second.stdout and first.calls == second.calls
    assert first.exit_code == 0 and first.stdout.count(b":N::") == 20


# -- select and brk (answered by the machine: the model has poll and no memory) -------------

def _standalone(source: str, abi_name: str = "linux-x86_64"):
    from conformance.port.asm import build_test
    from targets.runners.reference.standalone import run_standalone
    abi = load(abi_name)
    return run_standalone(build_test(source, abi), abi)


def _longs(data: bytes) -> list[int]:
    return [int.from_bytes(data[k:k + 8], "little", signed=True) for k in range(0, len(data), 8)]


# select(fds[1] + 1, SETS, SETS + 128, EXC_OR_0, TV): after each call its result, the first
# long of each set and the timeval are stored at OUT (then written to fd 1 at the end)
_SELECT = """
.equ FDS, 0x420000
.equ RSET, 0x420100
.equ WSET, 0x420180
.equ XSET, 0x420200
.equ TV, 0x420280
.equ OUT, 0x420300
_start:
    mov rax, 22
    mov rdi, FDS
    syscall
    mov r12, OUT
{body}
    mov rax, 1
    mov rdi, 1
    mov rsi, OUT
    mov rdx, r12
    sub rdx, OUT
    syscall
    mov rax, 231
    mov rdi, 0
    syscall
"""


def _select_call(read, write, exc=False, usec=0, timeout=True) -> str:
    """Asm: fill the sets with the pipe's ends (0 = read end, 1 = write end), select, store
    result, read set, write set, timeval usec at r12 (r12 += 32)."""
    lines = []
    for where, ends in (("RSET", read), ("WSET", write)):
        lines += ["    xor rax, rax"]
        for end in ends:
            lines += [f"    mov ecx, dword ptr [FDS + {4 * end}]", "    mov rdx, 1",
                      "    shl rdx, cl", "    or rax, rdx"]
        lines += [f"    mov rsi, {where}", "    mov qword ptr [rsi], rax"]
    lines += ["    mov rsi, XSET", f"    mov qword ptr [rsi], {1 if exc else 0}",
              "    mov rsi, TV", "    mov qword ptr [rsi], 0", f"    mov qword ptr [rsi + 8], {usec}",
              "    mov rax, 23", "    mov edi, dword ptr [FDS + 4]", "    add edi, 1",
              "    mov rsi, RSET", "    mov rdx, WSET", f"    mov r10, {'XSET' if exc else 0}",
              f"    mov r8, {'TV' if timeout else 0}", "    syscall",
              "    mov qword ptr [r12], rax",
              "    mov rsi, RSET", "    mov rax, qword ptr [rsi]", "    mov qword ptr [r12 + 8], rax",
              "    mov rsi, WSET", "    mov rax, qword ptr [rsi]", "    mov qword ptr [r12 + 16], rax",
              "    mov rsi, TV", "    mov rax, qword ptr [rsi + 8]", "    mov qword ptr [r12 + 24], rax",
              "    add r12, 32"]
    return "\n".join(lines)


def test_select_counts_ready_bits_and_rewrites_the_sets_with_the_ready_fds():
    r, w = 1 << 3, 1 << 4  # the pipe's fds are 3 and 4 (0-2 are the console)
    body = "\n".join([
        _select_call([0, 1], [0, 1]),            # empty pipe: only the write end is writable
        "    mov rax, 1\n    mov edi, dword ptr [FDS + 4]\n    mov rsi, FDS\n    mov rdx, 1\n"
        "    syscall",                            # write(fds[1], 1 byte)
        _select_call([0, 1], [0, 1]),            # now the read end is readable too
        "    mov rax, 3\n    mov edi, dword ptr [FDS]\n    syscall",   # close(fds[0])
        _select_call([1], [1]),                  # no readers: POLLERR, ready in both sets
        _select_call([0], []),                   # the closed fd: EBADF, sets untouched
        _select_call([1], [], exc=True),         # an except set: not modelled
        _select_call([], [], usec=1500),         # nothing: waits 2 ms, no time left
    ])
    run = _standalone(_SELECT.format(body=body))
    assert run.exit_code == 0, run
    got = [tuple(_longs(run.stdout[k:k + 32])) for k in range(0, len(run.stdout), 32)]
    ebadf, enosys = -load("linux-x86_64").errno["EBADF"], -load("linux-x86_64").errno["ENOSYS"]
    assert got == [
        (1, 0, w, 0),
        (2, r, w, 0),
        (2, w, w, 0),
        (ebadf, r, 0, 0),
        (enosys, w, 0, 0),
        (0, 0, 0, 0),
    ]
    assert any("except set" in n and "ENOSYS" in n for n in run.notes)


def test_a_blocking_select_wakes_on_a_write_and_writes_back_the_time_left():
    """A child writes after sleeping 100 ms; the parent's select (timeout 1 s) wakes then, with
    the time left (by the model's clock) in its timeval."""
    source = """
    .equ FDS, 0x420000
    .equ RSET, 0x420100
    .equ TV, 0x420280
    .equ TS, 0x4202a0
    _start:
        mov rax, 22
        mov rdi, FDS
        syscall
        mov rax, 57
        syscall
        test rax, rax
        jnz parent
        mov rsi, TS                 # child: nanosleep(100 ms), write, exit
        mov qword ptr [rsi], 0
        mov qword ptr [rsi + 8], 100000000
        mov rax, 35
        mov rdi, TS
        mov rsi, 0
        syscall
        mov rax, 1
        mov edi, dword ptr [FDS + 4]
        mov rsi, FDS
        mov rdx, 1
        syscall
        mov rax, 231
        mov rdi, 0
        syscall
    parent:
        mov rsi, RSET
        mov qword ptr [rsi], 8      # {3}
        mov rsi, TV
        mov qword ptr [rsi], 1
        mov qword ptr [rsi + 8], 0
        mov rax, 23
        mov rdi, 4
        mov rsi, RSET
        mov rdx, 0
        mov r10, 0
        mov r8, TV
        syscall
        mov rsi, RSET
        mov rdx, qword ptr [rsi]
        mov qword ptr [rsi + 8], rax
        mov qword ptr [rsi + 16], rdx
        mov rax, 1
        mov rdi, 1
        lea rsi, [TV]
        mov rdx, 16
        syscall
        mov rax, 1
        mov rdi, 1
        mov rsi, RSET + 8
        mov rdx, 16
        syscall
        mov rax, 231
        mov rdi, 0
        syscall
    """
    run = _standalone(source)
    assert run.exit_code == 0, run
    sec, usec, result, rset = _longs(run.stdout)
    assert (result, rset) == (1, 8)
    assert (sec, usec) == (0, 900_000)  # 1 s less the child's 100 ms of virtual time


def test_brk_grows_zeroed_memory_answers_queries_and_fork_copies_it():
    """brk(0) is the page-aligned end of the image; growing maps zeroed pages; a failed move
    (below the start) leaves the break; a forked child has the parent's break and bytes; after
    a shrink the dropped page faults."""
    from conformance.port.asm import IMAGE_END
    source = """
    .equ OUT, 0x420000
    .equ WST, 0x420100
    _start:
        mov r12, OUT
        mov rax, 12                 # brk(0)
        mov rdi, 0
        syscall
        mov rbx, rax
        mov qword ptr [r12], rax
        lea rdi, [rbx + 8192]       # brk(start + 8192)
        mov rax, 12
        syscall
        mov qword ptr [r12 + 8], rax
        movzx eax, byte ptr [rbx + 8191]     # zeroed
        mov qword ptr [r12 + 16], rax
        mov byte ptr [rbx + 8191], 0x5a
        mov rax, 12                 # brk(0x1000): below the start, refused
        mov rdi, 0x1000
        syscall
        mov qword ptr [r12 + 24], rax
        mov rax, 57                 # fork: the child exits with its byte, after its brk(0)
        syscall
        test rax, rax
        jnz parent
        mov rax, 12
        mov rdi, 0
        syscall
        lea rdx, [rbx + 8192]
        cmp rax, rdx
        jne bad
        movzx edi, byte ptr [rbx + 8191]
        mov rax, 231
        syscall
    bad:
        mov rax, 231
        mov rdi, 1
        syscall
    parent:
        mov rdi, rax
        mov rax, 61
        mov rsi, WST
        mov rdx, 0
        mov r10, 0
        syscall
        mov eax, dword ptr [WST]
        mov qword ptr [r12 + 32], rax
        mov rax, 12                 # brk(start + 1): shrink to one page
        lea rdi, [rbx + 1]
        syscall
        mov qword ptr [r12 + 40], rax
        mov rax, 57                 # a child touching the dropped page dies of SIGSEGV
        syscall
        test rax, rax
        jnz parent2
        mov byte ptr [rbx + 4096], 1
        mov rax, 231
        mov rdi, 0
        syscall
    parent2:
        mov rdi, rax
        mov rax, 61
        mov rsi, WST
        mov rdx, 0
        mov r10, 0
        syscall
        mov eax, dword ptr [WST]
        mov qword ptr [r12 + 48], rax
        mov rax, 1
        mov rdi, 1
        mov rsi, OUT
        mov rdx, 56
        syscall
        mov rax, 231
        mov rdi, 0
        syscall
    """
    abi = load("linux-x86_64")
    run = _standalone(source)
    assert run.exit_code == 0, run
    start, grown, byte, refused, child, shrunk, segv = _longs(run.stdout)
    assert start == IMAGE_END and grown == start + 8192 and byte == 0
    assert refused == grown
    assert decode_linux_wait_status(child, abi) == WaitStatus("exited", 0x5A)
    assert shrunk == start + 1
    assert decode_linux_wait_status(segv, abi) == WaitStatus("killed", "SIGSEGV", False)


# -- signal frames -------------------------------------------------------------------------

def _frame_setup(abi_name, siginfo=True, switch_to=None):
    abi = load(abi_name)
    isa = isa_for(abi.isa)
    cpu = Cpu.load(build(load_corpus("basic")[:1], abi).elf, isa, isa.trap(abi.trap))
    for k, name in enumerate(isa.context):
        if name not in (isa.pc, isa.sp, isa.flags) and name not in isa.initial:
            cpu.set(name, 0x1111_0000 + k if name not in isa.simd else (k << 64) | k)
    cpu.set(isa.pc, 0x400100)
    cpu.set(isa.sp, cpu.get(isa.sp) - 0x1000 - 8)  # a misaligned stack pointer on purpose
    before = cpu.context()
    info = bytes(range(abi.layouts["siginfo"].size)) if siginfo else None
    delivery = Delivery(abi.signals["SIGUSR1"], 0x400200, 0x400300, info, 1 << 9,
                        (Memory.ALTSTACK, 0, 0x4000), switch_to)
    frames = builder_for(abi, isa)
    frame = frames.push(cpu, delivery)
    return abi, isa, cpu, frames, frame, before, delivery


@pytest.mark.parametrize("abi_name", ABIS)
def test_saved_registers_are_where_the_abi_table_says(abi_name):
    abi, isa, cpu, _, frame, before, d = _frame_setup(abi_name)
    sp = cpu.get(isa.sp)
    assert sp == frame and sp % 16 == abi.limits["handler_sp_mod16"]
    for reg in abi.frame_gregs:
        assert cpu.u(sp + abi.frame_offset(reg)) == before[reg], reg
    assert cpu.get(isa.pc) == d.handler
    assert cpu.get(abi.arg_regs[0]) == d.signo
    info = cpu.get(abi.arg_regs[1])
    assert cpu.read(info, len(d.siginfo)) == d.siginfo


@pytest.mark.parametrize("abi_name", ABIS)
def test_a_table_whose_frame_disagrees_with_the_isa_layout_is_refused(abi_name):
    import dataclasses
    abi = load(abi_name)
    wrong = dataclasses.replace(abi, frame_gregs_from_sp=abi.frame_gregs_from_sp + 8)
    with pytest.raises(ValueError, match="gregs_from_sp"):
        builder_for(wrong, isa_for(abi.isa))


@pytest.mark.parametrize("abi_name", ABIS)
def test_sigreturn_restores_every_register_from_the_frame(abi_name):
    abi, isa, cpu, frames, frame, before, _ = _frame_setup(abi_name)
    edited = abi.frame_gregs[3]
    cpu.put(frame + abi.frame_offset(edited), 0xFEED)  # a handler edits its ucontext
    for name in abi.frame_gregs + isa.simd:  # the handler clobbers them, as the recording one does
        cpu.set(name, -1)
    cpu.set(isa.sp, frame + frames.RETURN_SP)
    frames.pop(cpu)
    after = cpu.context()
    for name in isa.context:
        want = 0xFEED if name == edited else before[name]
        if name != isa.flags and name not in isa.initial:
            assert after[name] == want, name


@pytest.mark.parametrize("abi_name", ABIS)
def test_a_frame_moves_to_the_top_of_the_alternate_stack(abi_name):
    top = Memory.ALTSTACK + Memory.ALTSTACK_SIZE
    abi, isa, cpu, frames, frame, before, _ = _frame_setup(abi_name, siginfo=False,
                                                           switch_to=top)
    assert top - 8192 < frame < top and frame % 16 == abi.limits["handler_sp_mod16"]
    # the frame fits an alternate stack of MINSIGSTKSZ, as Linux's does
    assert top - frame <= abi.limits["MINSIGSTKSZ"]


# -- conversions ---------------------------------------------------------------------------

@pytest.mark.parametrize("abi_name", ABIS)
def test_wait_statuses_encode_as_the_normaliser_decodes(abi_name):
    abi = load(abi_name)
    codec = Codec(abi)
    for status in (WaitStatus("exited", 0), WaitStatus("exited", 255),
                   WaitStatus("killed", "SIGKILL"), WaitStatus("killed", "SIGSEGV", True),
                   WaitStatus("stopped", "SIGSTOP"), WaitStatus("continued")):
        assert decode_linux_wait_status(codec.wait_status(status), abi) == status


@pytest.mark.parametrize("abi_name", ABIS)
def test_sigsets_and_stack_sizes_convert_through_the_table(abi_name):
    abi = load(abi_name)
    codec = Codec(abi)
    sigs = SigSet(("SIGUSR1", "SIGCHLD", 40))
    assert codec.sigset(codec.sigbits(sigs.signals)) == sigs
    minimum = abi.limits["MINSIGSTKSZ"]
    small = codec.stack_in(Memory.ALTSTACK, 0, minimum - 1)
    assert small.size == StackSize("MINSIGSTKSZ", -1)
    assert codec.stack_out(small) == (Memory.ALTSTACK, 0, minimum - 1)
    assert codec.signal(abi.signals["SIGTERM"]) == "SIGTERM" and codec.signal(40) == 40


# -- the runners ---------------------------------------------------------------------------

@pytest.mark.parametrize("target", REF_TARGETS)
def test_the_runner_is_registered_contained_and_checks_the_isa(target):
    runner = get(target)
    assert isinstance(runner, ReferenceRunner) and runner in RUNNERS
    assert runner.unavailable() is None and runner.contained
    assert "unicorn" in runner.version() and "oracle kernel model" in runner.version()
    other = "linux-aarch64" if runner.isa == "x86_64" else "linux-x86_64"
    with pytest.raises(TargetError, match=f"target {target} runs {runner.isa}"):
        runner.run(build(load_corpus("basic")[:1], load(other)).elf, 10)


# -- end to end ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpora():
    out = {}
    for name in ("basic", "signals"):
        programs = load_corpus(name)
        out[name] = programs, [predict(p) for p in programs]
    return out


@pytest.mark.e2e
@pytest.mark.parametrize("corpus", ["basic", "signals"])
@pytest.mark.parametrize("target", REF_TARGETS)
def test_corpus_agrees_with_the_oracle(corpora, corpus, target):
    programs, expected = corpora[corpus]
    report = check(programs, expected, get(target))
    bad = disagreements(report)
    assert not bad, "\n".join(bad)


@pytest.mark.e2e
@pytest.mark.parametrize("target", REF_TARGETS)
def test_a_hang_is_the_watchdog_firing_in_virtual_time(parse, target):
    program = parse("""
        r, w = pipe()
        c = fork {
            read(r, 4)
        }
        read(r, 1)
    """)
    expected = predict(program)
    assert expected.outcomes[0].hung
    report = check([program], [expected], get(target))
    assert report.verdicts[0].status == AGREES, report.verdicts[0].detail


@pytest.mark.e2e
@pytest.mark.parametrize("target", REF_TARGETS)
def test_a_sigreturn_that_forgets_a_register_is_caught(corpora, target):
    runner = get(target)
    programs, expected = corpora["signals"]
    reg = FORGOTTEN[runner.isa]
    must = {p.name for p, e in zip(programs, expected) if probes_spanning_a_handler(e)}
    report = check(programs, expected, runner, faults=Faults(corrupt_saved_register=reg))
    for v in assert_caught_exactly(report, must):
        assert v.status == DIVERGES and f"changed: {reg}]" in v.detail, v.detail


@pytest.mark.e2e
@pytest.mark.parametrize("target", REF_TARGETS)
def test_a_handler_that_ignores_sa_onstack_is_caught(corpora, target):
    runner = get(target)
    programs, expected = corpora["signals"]
    must = {p.name for p, e in zip(programs, expected) if shows_sa_onstack(e)}
    report = check(programs, expected, runner, faults=Faults(drop_sa_onstack=True))
    assert len(assert_caught_exactly(report, must)) == len(must) >= 3
    assert HUNG not in report.counts()


@pytest.mark.parametrize("ending", ["poweroff", "restart"])
def test_a_vm_style_batch_ends_the_reference_machine_with_either_reboot_command(ending):
    from conformance import trace
    runner = get("x86_64-ref")
    programs = load_corpus("basic")[:3]
    result = runner.run(build(programs, runner.abi, ending=ending).elf, 30)
    parsed = trace.parse(result.output)
    assert result.returncode is None and not result.timed_out  # halted, as a VM powers off
    assert all(parsed.program(k).started for k in range(len(programs)))


def test_register_probes_keep_the_aarch64_state_base_register():
    # Probes fill every register but x0 with patterns, x28 included: the state area's base
    # must come back before anything is stored, or every later record is lost.
    from generators import sample
    programs = sample(60, family="registers", seed=1)
    report = check(programs, [predict(p) for p in programs], get("aarch64-ref"))
    assert disagreements(report) == []
