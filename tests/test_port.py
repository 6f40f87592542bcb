"""`conformance port` (conformance/port/): old x86-64 `int 0x80` tests ported to aarch64.

The examples in tests/data/port/ are hand-written x86-64 assembly (assembled here with
keystone, linked with conformance.elf.write_elf), each naming its source ABI on its first
line. Each must port; the oracle's prediction for the ported program must agree with the
original's run (every result it relied on, its output bytes, its exit code); and the ported
program must agree with the oracle on every aarch64 target present, printing the original's
bytes. Then the inputs that cannot be ported, each one `error:` line and exit status 2.
"""
from __future__ import annotations

import random
import struct
from functools import cache
from pathlib import Path

import pytest

pytest.importorskip("unicorn", reason="porting runs the test on the reference machine (unicorn)")

from conformance.check import check
from conformance.cli import main
from conformance.elf import write_elf
from conformance.port import PortError, port, write_outputs
from conformance.port.asm import build_test, declared_abi
from conformance.port.regcheck import checks_after
from conformance.port.source import SOURCE_ABIS
from conformance.port.verify import program_outputs
from conformance.syntax import parse
from e2e import disagreements, runner_or_skip
from oracle import predict
from targets.tables import load

DATA = Path(__file__).parent / "data" / "port"
EXAMPLES = sorted(p.stem for p in DATA.glob("*.s"))
TARGETS = ("aarch64-ref", "aarch64-qemu-user", "aarch64-linux-vm")


@cache
def example(name: str):
    """(source alias, ELF bytes, Port) of one example."""
    source = (DATA / f"{name}.s").read_text()
    alias = declared_abi(source)
    elf = build_test(source, load(SOURCE_ABIS[alias]))
    return alias, elf, port(f"{name}.elf", elf, alias)


def test_the_examples_cover_both_source_abis():
    aliases = {declared_abi((DATA / f"{n}.s").read_text()) for n in EXAMPLES}
    assert {"breenix-legacy", "linux-i386"} <= aliases


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_example_ports_and_keeps_its_meaning(name, tmp_path):
    _alias, _elf, result = example(name)
    run = result.trace.run
    assert run.stdout.startswith(b"PASS") and run.exit_code == 0, run
    assert parse((write_outputs(result, tmp_path)[0]).read_text()) == result.lifted.program
    for file in ("program.prog", "aarch64.elf", "aarch64.s", "expected.txt", "aarch64.rs",
                 "aarch64.c", "report.txt", "trace.txt"):
        assert (tmp_path / file).stat().st_size > 0, file
    assert result.elf[18] == 183  # EM_AARCH64
    # the oracle's prediction for the port = the original's run: results, output, exit code
    assert result.agreement.agrees, result.agreement.problems()
    assert result.agreement.output_port == run.stdout
    assert result.agreement.status_predicted.how == "exited"
    assert result.agreement.status_predicted.value == run.exit_code
    assert "verdict: the port keeps" in (tmp_path / "report.txt").read_text()


@pytest.mark.e2e
@pytest.mark.parametrize("target", TARGETS)
def test_the_ported_programs_agree_on_aarch64(target):
    runner = runner_or_skip(target)
    ports = [example(n)[2] for n in EXAMPLES]
    programs = [p.lifted.program for p in ports]
    report = check(programs, [predict(p) for p in programs], runner)
    assert not disagreements(report), disagreements(report)
    # one batch, so run it once more raw: each program prints exactly the original's bytes
    from conformance.batch import build
    from conformance.check import batch_timeout
    batch = build(programs, runner.abi, ending=runner.batch_ending)
    raw = runner.run(batch.elf, batch_timeout(len(programs), batch.watchdog_ms)).output
    printed = program_outputs(raw)
    for index, ported in enumerate(ports):
        assert printed.get(index, b"").replace(b"\r\n", b"\n") == ported.trace.run.stdout, \
            EXAMPLES[index]


def test_the_register_check_becomes_a_probe_and_the_handler_flag_is_unliftable():
    result = example("breenix_signal")[2]
    kill = next(op for op in result.lifted.program.body if op.call == "kill")
    assert kill.probe and kill.args[0].name == "self"
    flag_check = [u for u in result.lifted.unliftable if "memory check" in u.what]
    assert len(flag_check) == 1 and flag_check[0].pc > 0x400000
    assert any("register check" in c and "r12" in c for c in result.lifted.checks)


def test_error_results_the_path_relied_on_are_reported():
    result = example("breenix_sigaltstack")[2]
    assert any("-ENOMEM" in r for r in result.lifted.relied)
    assert result.lifted.program.body[0].args[0].delta == -1  # MINSIGSTKSZ-1


def test_calls_without_an_op_and_calls_inside_handlers_are_listed_with_addresses():
    source = """
    _start:
        lea rax, [handler]
        mov qword ptr [0x420000], rax
        mov rax, 0x04000000
        mov qword ptr [0x420008], rax
        lea rax, [restorer]
        mov qword ptr [0x420010], rax
        mov rax, 13                 # sigaction(SIGUSR2, &act, NULL, 8)
        mov rdi, 12
        mov rsi, 0x420000
        mov rdx, 0
        mov r10, 8
        int 0x80
        mov rax, 3                  # YIELD: no IR op
        int 0x80
        mov rax, 39
        int 0x80
        mov rdi, rax
        mov rax, 62                 # kill(self, SIGUSR2)
        mov rsi, 12
        int 0x80
        mov rax, 0
        mov rdi, 3
        int 0x80
    handler:
        mov rax, 39                 # getpid() inside the handler
        int 0x80
        ret
    restorer:
        mov rax, 15
        int 0x80
    """
    abi = load("breenix-legacy-x86_64")
    result = port("t.elf", build_test(source, abi), "breenix-legacy")
    where = {u.pc: u.what for u in result.lifted.unliftable}
    assert any("sched_yield" in w and "no op" in w for w in where.values())
    assert any("getpid" in w and "inside a signal handler" in w for w in where.values())
    assert all(pc >= 0x400078 for pc in where)
    assert [op.call for op in result.lifted.program.body] == ["sigaction", "getpid", "kill",
                                                               "exit"]
    assert result.agreement.agrees and result.agreement.status_original.value == 3



def test_select_is_lifted_as_poll_with_a_note_and_its_out_sets_are_compared():
    import dataclasses
    from conformance.ir import PollFd
    from conformance.port.verify import verify
    result = example("breenix_select")[2]
    polls = [op for op in result.lifted.program.body if op.call == "poll"]
    assert [[(e.fd.name, e.events.names) for e in op.args[0]] for op in polls] == [
        [("r1", ("POLLIN",))], [("r1", ("POLLIN",)), ("w1", ("POLLOUT",))]]
    assert all(op.args[1] == 0 and isinstance(op.args[0][0], PollFd) for op in polls)
    selects = [c for c, _ in result.lifted.lifted if c.name == "select"]
    assert len(selects) == 2 and [c.result for c in selects] == [0, 2]
    assert sum("select lifted as poll" in n for n in result.lifted.notes) == 2
    # the out sets take part in the expectation check: a run whose second select had left
    # the read set empty disagrees with the oracle's revents for it
    trace = result.trace
    second = selects[1]
    emptied = dataclasses.replace(second, outputs=tuple(
        dataclasses.replace(b, fields=()) if b.role == "readfds" else b
        for b in second.outputs))
    tampered = dataclasses.replace(trace, calls=tuple(emptied if c is second else c
                                                      for c in trace.calls))
    lifted = dataclasses.replace(result.lifted, pairs=[
        (lpid, index, emptied if call is second else call)
        for lpid, index, call in result.lifted.pairs])
    problems = verify(lifted, tampered, predict(result.lifted.program)).problems()
    assert any("fd 3 in the read set out: the original False, the port True" in p
               for p in problems), problems


def test_select_with_an_fd_in_both_sets_is_unliftable():
    source = """
    _start:
        mov rax, 22
        mov rdi, 0x420000
        syscall
        mov ecx, dword ptr [0x420004]   # the write end in both sets
        mov rax, 1
        shl rax, cl
        mov rsi, 0x420100
        mov qword ptr [rsi], rax
        mov qword ptr [rsi + 128], rax
        mov rax, 23                     # select(w + 1, &set, &set2, NULL, {0, 0}) = 1
        mov edi, dword ptr [0x420004]
        add edi, 1
        mov rsi, 0x420100
        mov rdx, 0x420180
        mov r10, 0
        mov r8, 0x420300
        syscall
        mov rdi, rax
        mov rax, 60
        syscall
    """
    result = port("t.elf", build_test(source, load("linux-x86_64")), "linux-x86_64")
    assert result.trace.run.exit_code == 1  # writable, not readable: one bit
    assert [op.call for op in result.lifted.program.body] == ["pipe", "exit"]
    (item,) = [u for u in result.lifted.unliftable if "select" in u.what]
    assert "both the read and the write set" in item.what and "not equivalent" in item.what
    assert item.pc == next(c.pc for c in result.trace.calls if c.name == "select")


def test_brk_is_unliftable_with_its_address_and_the_rest_is_ported():
    result = example("breenix_brk")[2]
    brks = [c for c in result.trace.calls if c.name == "brk"]
    assert len(brks) == 2 and brks[1].result == brks[0].result + 4096
    items = [u for u in result.lifted.unliftable if "brk" in u.what]
    assert [u.pc for u in items] == [c.pc for c in brks]
    assert all("no op for the program break" in u.what for u in items)
    assert f"{brks[1].result:#x}" in items[1].what
    assert [op.call for op in result.lifted.program.body] == ["pipe", "write", "read", "write",
                                                               "exit"]
    assert result.lifted.program.body[1].args[1] == b"hello"  # written from the new page


# -- the decoder of checks after a call -----------------------------------------------------

def test_checks_after_a_call_are_classified():
    abi = load("linux-x86_64")
    from conformance.assemble import assemble
    code = assemble("cmp r12, r13\njne x\ntest rax, rax\ncmp byte ptr [0x420040], 1\n"
                    "mov rbx, 5\ncmp rbx, 5\nx:\njmp x", abi, 0x401000)
    kinds = [(c.kind, c.regs) for c in checks_after(code, 0x401000, "rax")]
    assert kinds == [("register", ("r12", "r13")), ("result", ("rax",)), ("memory", ())]


# -- inputs that cannot be ported -----------------------------------------------------------

def _port_error(capsys, tmp_path, image: bytes, *args) -> str:
    path = tmp_path / "t.elf"
    path.write_bytes(image)
    status = main(["port", str(path), *args, "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error: "), (status, err)
    return err[0]


def _elf32() -> bytes:
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, 0x8048054, 52, 0, 0, 52, 32, 1,
                                 40, 0, 0)
    phdr = struct.pack("<IIIIIIII", 1, 0, 0x8048000, 0x8048000, 0x60, 0x60, 5, 0x1000)
    return header + phdr + b"\xcc" * 12


def _pipe_elf() -> bytes:
    return example("breenix_pipe")[1]


@pytest.mark.parametrize("case, args, message", [
    ("text", ["--from-abi", "breenix-legacy"], "not an ELF file"),
    ("aarch64", ["--from-abi", "breenix-legacy"],
     "a 64-bit aarch64 ELF; --from-abi breenix-legacy reads 64-bit x86-64 ELFs"),
    ("elf32", ["--from-abi", "linux-x86_64"], "a 32-bit i386 ELF; --from-abi linux-x86_64"),
    ("elf32", ["--from-abi", "linux-i386"], "32-bit i386 ELFs are not supported"),
    ("no-load", ["--from-abi", "breenix-legacy"], "no PT_LOAD segment"),
    ("upx", ["--from-abi", "breenix-legacy"], "packed with UPX"),
    ("entropy", ["--from-abi", "breenix-legacy"], "looks packed or encrypted"),
    ("pipe", ["--from-abi", "breenix"],
     "unknown source ABI 'breenix' (known: breenix-legacy, linux-i386, linux-x86_64)"),
    ("pipe", ["--from-abi", "breenix-legacy", "--to", "mips"], "--to 'mips'"),
    ("spin", ["--from-abi", "breenix-legacy", "--timeout", "2"],
     "watchdog: the test did not exit within 2 s"),
    ("blocks", ["--from-abi", "linux-x86_64"], "watchdog: the test did not exit within 10 s"),
])
def test_bad_input_is_one_error_line(capsys, tmp_path, case, args, message):
    x86 = load("linux-x86_64")
    images = {
        "text": lambda: b"#!/bin/sh\necho PASS\n",
        "aarch64": lambda: write_elf(b"\x00" * 16, machine=183, base=0x400000, entry=0x400078,
                                     memsz=0x1000),
        "elf32": _elf32,
        "no-load": lambda: _pipe_elf()[:56] + b"\x00\x00" + _pipe_elf()[58:64],  # e_phnum 0
        "upx": lambda: _pipe_elf() + b"UPX!",
        "entropy": lambda: write_elf(random.Random(1).randbytes(8192),
                                     machine=62, base=0x400000, entry=0x400078, memsz=0x3000),
        "pipe": _pipe_elf,
        "spin": lambda: build_test("_start:\nspin:\n    jmp spin\n", x86),
        # reads a pipe whose write end it keeps open: blocks forever
        "blocks": lambda: build_test("_start:\n    mov rax, 22\n    mov rdi, 0x420000\n"
                                     "    syscall\n    mov rax, 0\n"
                                     "    mov edi, dword ptr [0x420000]\n"
                                     "    mov rsi, 0x420010\n    mov rdx, 1\n    syscall\n",
                                     x86),
    }
    assert message in _port_error(capsys, tmp_path, images[case](), *args)


def test_port_error_is_a_value_error_naming_the_file():
    with pytest.raises(PortError, match=r"^x\.elf: not an ELF"):
        port("x.elf", b"nope", "breenix-legacy")


def test_the_cli_writes_outdir_and_says_what_it_lifted(capsys, tmp_path):
    path = tmp_path / "pipe.elf"
    path.write_bytes(_pipe_elf())
    assert main(["port", str(path), "--from-abi", "breenix-legacy", "--to", "aarch64"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'pipe.port' / 'aarch64.elf'}" in out
    assert "7 syscalls lifted, 7 operands made symbolic, 0 unliftable" in out


def test_a_linux_x86_64_test_with_syscall_and_exit_ports():
    source = """
    _start:
        mov rax, 22                 # pipe
        mov rdi, 0x420000
        syscall
        mov rax, 1                  # write(fds[1], "ab", 2)
        mov edi, dword ptr [0x420004]
        lea rsi, [text]
        mov rdx, 2
        syscall
        mov rax, 3                  # close(fds[1])
        mov edi, dword ptr [0x420004]
        syscall
        mov rax, 0                  # read(fds[0], buf, 8): "ab"
        mov edi, dword ptr [0x420000]
        mov rsi, 0x420010
        mov rdx, 8
        syscall
        mov rax, 0                  # read again: EOF
        syscall
        mov rax, 60                 # exit(5)
        mov rdi, 5
        syscall
    text:
        .ascii "ab"
    """
    result = port("t.elf", build_test(source, load("linux-x86_64")), "linux-x86_64")
    assert [op.call for op in result.lifted.program.body] == ["pipe", "write", "close", "read",
                                                               "read", "exit"]
    assert result.agreement.agrees and result.agreement.status_predicted.value == 5
    assert not result.lifted.unliftable


def test_the_target_may_be_any_abi_table(tmp_path):
    from conformance.port.command import target_abi
    assert target_abi("aarch64").name == "linux-aarch64"
    assert target_abi("breenix-legacy-aarch64").trap == "svc #0"
    with pytest.raises(PortError, match="--to 'mips'"):
        target_abi("mips")


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["c", "rust"])
def test_the_reproducer_source_of_a_port_agrees_on_aarch64_qemu_user(kind):
    from conformance import repro, trace
    from conformance.compare import AGREES, judge
    abi = load("linux-aarch64")
    if kind == "c" and repro.c_compiler(abi) is None:
        pytest.skip("no C compiler for aarch64 (Debian: apt-get install gcc-aarch64-linux-gnu)")
    if kind == "rust" and repro.rust_unavailable(abi):
        pytest.skip(repro.rust_unavailable(abi))
    runner = runner_or_skip("aarch64-qemu-user")
    ported = example("breenix_pipe")[2]
    program = ported.lifted.program
    source = getattr(repro, f"{kind}_source")(program, abi)
    binary = getattr(repro, f"build_{kind}")(source, abi)
    output = runner.run(binary, 30).output
    parsed = trace.parse(output)
    verdict = judge(program, 0, parsed.program(0), predict(program), abi, parsed.driver_pid,
                    parsed.handlers)
    assert verdict.status == AGREES, verdict.detail
    assert program_outputs(output).get(0) == ported.trace.run.stdout


def test_an_i386_handler_ports_with_a_note_about_its_frame():
    source = """
    _start:
        lea eax, [handler]
        mov dword ptr [0x420000], eax
        mov dword ptr [0x420004], 0x04000000
        lea eax, [restorer]
        mov dword ptr [0x420008], eax
        mov eax, 174                # rt_sigaction(SIGUSR1, compat act, NULL, 8)
        mov ebx, 10
        mov ecx, 0x420000
        mov edx, 0
        mov esi, 8
        int 0x80
        mov eax, 20                 # getpid
        int 0x80
        mov ebx, eax
        mov eax, 37                 # kill(pid, SIGUSR1)
        mov ecx, 10
        int 0x80
        mov eax, 1
        mov ebx, 0
        int 0x80
    handler:
        ret
    restorer:
        mov eax, 173
        int 0x80
    """
    result = port("t.elf", build_test(source, load("linux-i386")), "linux-i386")
    assert [op.call for op in result.lifted.program.body] == ["sigaction", "getpid", "kill",
                                                               "exit"]
    assert result.agreement.agrees  # one handler run on both sides
    assert any("ia32 frame" in n for n in result.lifted.notes)


def test_write_may_name_the_console_fds_and_nothing_else_may():
    from conformance.syntax import ProgramSyntaxError
    assert parse('write(1, "PASS\\n")\nwrite(2, "x")\n').body[0].args == (1, b"PASS\n")
    for text in ("read(1, 4)\n", "close(2)\n", 'write(0, "x")\n'):
        with pytest.raises(ProgramSyntaxError, match="belongs to the harness"):
            parse(text)


# -- --explore: checked results forced to fail ---------------------------------------------------

def test_explore_forces_each_checked_result_of_the_pipe_test(tmp_path):
    from conformance.port.explore import NOT_CHECKABLE, explore, flips
    alias, elf, result = example("breenix_pipe")
    trace, source = result.trace, result.source
    # pipe, write and read are checked right after their traps; close and exit are not
    assert [(f.call.name, f.errno) for f in flips(trace, source)] == [
        ("pipe", "ENOSYS"), ("pipe", "EMFILE"), ("write", "ENOSYS"), ("write", "EBADF"),
        ("read", "ENOSYS"), ("read", "EBADF")]
    paths = explore(trace, source, elf, result.target, limit_s=10.0)
    for p in paths:
        assert p.applied and p.changed, p.flip
        assert p.trace.run.stdout == b"FAIL pipe\n" and p.trace.run.exit_code == 1
        forced = p.trace.calls[p.flip.seq]
        assert forced.errno(trace.abi) == p.flip.errno and forced.name == p.flip.call.name
        # the variant: the calls before the forced one, then the forced run's output and exit
        assert p.agreement is not None and p.agreement.agrees, p.agreement.problems()
        assert p.program_text.rstrip().endswith('write(1, "FAIL pipe\\n")\nexit(1)')
        assert p.elf[18] == 183
    first = parse(paths[0].program_text)  # pipe failed: nothing before it
    assert [op.call for op in first.body] == ["write", "exit"]
    read = parse(paths[4].program_text)   # read failed: pipe and the write before it stay
    assert [op.call for op in read.body] == ["pipe", "write", "write", "exit"]
    assert NOT_CHECKABLE in paths[0].program_text


def test_explore_cli_writes_the_paths_section_and_variants(tmp_path):
    _alias, elf, _result = example("breenix_pipe")
    src = tmp_path / "pipe.elf"
    src.write_bytes(elf)
    out = tmp_path / "out"
    assert main(["port", str(src), "--from-abi", "breenix-legacy", "--explore",
                 "-o", str(out)]) == 0
    report = (out / "report.txt").read_text()
    assert "paths (--explore: 6 flips" in report and "not explored" not in report
    assert ("pipe(0x420000) = 0 forced -> -ENOSYS: path changed: exited(1), output "
            "b'FAIL pipe\\n'; paths/1-pipe-ENOSYS/; variant's oracle prediction matches") in report
    variant = out / "paths" / "1-pipe-ENOSYS"
    for file in ("program.prog", "aarch64.elf", "aarch64.s", "trace.txt", "report.txt"):
        assert (variant / file).stat().st_size > 0, file
    text = (variant / "report.txt").read_text()
    assert "forced to -ENOSYS" in text and "not checkable on a real kernel" in text
    assert "verdict: matches" in text


def test_explore_is_off_by_default(tmp_path):
    _alias, _elf, result = example("breenix_pipe")
    assert result.paths is None
    write_outputs(result, tmp_path)
    assert not (tmp_path / "paths").exists()
    assert "not explored" in (tmp_path / "report.txt").read_text()
