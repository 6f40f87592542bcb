"""Reproducers: the C and Rust sources build freestanding, and run to the assembly ELF's outcome.

Every built binary runs only inside the sandbox, through the same runner as the ELF it is
compared with. Two runs of one program may differ in timer readings (compared to within
TIME_SLACK_US) and in races the program allows, so a mismatch is retried: the reproducer
passes when one of its outcomes equals one of the ELF's.
"""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import pytest

from conformance import trace
from conformance.batch import DEFAULT_WATCHDOG_MS, build
from conformance.cli import builtin_corpora, load_corpus
from conformance.compare import describe, observe
from conformance.events import Micros
from conformance.ir import walk
from conformance.lower import Imm, lower_driver, lower_program
from e2e import runner_or_skip
from targets.runners.sandbox import namespace_unavailable, unsafe_without_namespace
from targets.tables import load

pytest.importorskip("conformance.repro", reason="conformance.repro is not installed: a "
                    "non-editable install needs it in pyproject.toml's [tool.setuptools] packages")
from conformance.repro import (  # noqa: E402  (after the check above)
    BuildError, build_c, build_rust, c_compiler, c_source, lower_one, rust_source,
    rust_unavailable, toolchain,
)
from conformance.repro.common import PayloadAddr, PayloadRodata  # noqa: E402
from conformance.repro.toolchain import C_FLAGS, RUST_FLAGS, compile_source  # noqa: E402

TARGETS = {"x86_64": "x86_64-native", "aarch64": "aarch64-qemu-user"}
ABIS = {isa: load(f"linux-{isa}") for isa in TARGETS}
PROGRAMS = {p.name: p for corpus in builtin_corpora() for p in load_corpus(corpus)}
TIME_SLACK_US = 1_000_000  # timer readings of two runs agree to within this
ATTEMPTS = 10  # qemu-user sometimes loses a race the ELF and the reproducer both run into
# (signals/039 there: the process died part-way in 23 of 25 runs, at one of three points)
# Rust: a few programs covering fork, pattern payloads, a zero-length write, both handler
# kinds, the alternate stack, nesting, timers and probes.
RUST_PROGRAMS = [n for n in PROGRAMS if n.split("-")[0] in (
    "01", "12", "16", "36", "001", "010", "063", "066", "075", "121", "141", "150")]


def same(a, b) -> bool:
    """Outcomes (or parts) equal, timer readings to within TIME_SLACK_US (zero stays zero)."""
    if isinstance(a, Micros) and isinstance(b, Micros):
        return (a.us == 0) == (b.us == 0) and abs(a.us - b.us) <= TIME_SLACK_US
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return a == b


def difference(a, b) -> str:
    """Where two outcomes part, in words."""
    for lpid in sorted({l for l, _ in a.procs} | {l for l, _ in b.procs}):
        ea, eb = a.events(lpid), b.events(lpid)
        for pos in range(max(len(ea), len(eb))):
            x, y = (ea[pos] if pos < len(ea) else None), (eb[pos] if pos < len(eb) else None)
            if not same(x, y):
                return f"p{lpid} record {pos}: ELF {describe(x)}, reproducer {describe(y)}"
    return f"reaped/hung: ELF {a.reaped} {a.hung}, reproducer {b.reaped} {b.hung}"


def observed(program, abi, result):
    """(outcome, problems) of one run of a one-program binary."""
    parsed = trace.parse(result.output)
    prog = parsed.program(0)
    outcome, problems = observe(program, prog, abi, parsed.driver_pid, parsed.handlers)
    problems += parsed.problems
    if len(parsed.handlers) != 2:
        problems.append(f"the driver announced handlers {parsed.handlers}")
    if not prog.finished:
        problems.append("the driver never reported the program's end")
    return outcome, problems


def runnable(isa: str, program):
    runner = runner_or_skip(TARGETS[isa])
    why = namespace_unavailable()
    if why and unsafe_without_namespace(program):
        pytest.skip(f"not run: {unsafe_without_namespace(program)}, and no namespace ({why})")
    return runner


def agrees_with_elf(program, isa: str, binary: bytes) -> None:
    """Run the ELF and the reproducer (retrying races) until their outcomes meet."""
    runner, abi = runnable(isa, program), ABIS[isa]
    elf = build([program], abi).elf
    elf_seen, repro_seen = [], []
    for _ in range(ATTEMPTS):
        elf_seen.append(observed(program, abi, runner.run(elf, 30))[0])
        outcome, problems = observed(program, abi, runner.run(binary, 30))
        assert not problems, f"{program.name}: {problems}"
        repro_seen.append(outcome)
        if any(same(e, r) for e in elf_seen for r in repro_seen):
            return
    pytest.fail(f"{program.name}: {difference(elf_seen[0], repro_seen[0])}")


@cache
def c_binaries(isa: str) -> dict[str, bytes | str]:
    """Every corpus program's C reproducer for `isa`, built in parallel (errors as text)."""
    abi = ABIS[isa]

    def one(program):
        try:
            return build_c(c_source(program, abi), abi)
        except BuildError as exc:
            return str(exc)

    with ThreadPoolExecutor(8) as pool:
        return dict(zip(PROGRAMS, pool.map(one, PROGRAMS.values())))


def c_compiler_or_skip(isa: str) -> str:
    cc = c_compiler(ABIS[isa])
    if cc is None:
        pytest.skip(f"no C compiler for {isa} (Debian: apt-get install "
                    f"{toolchain(ABIS[isa]).cross_package})")
    return cc


# --- sources -----------------------------------------------------------------------------

@pytest.mark.parametrize("isa", TARGETS)
def test_the_micro_ops_are_the_elfs_with_symbolic_payloads(isa):
    abi = ABIS[isa]
    for program in PROGRAMS.values():
        rodata = PayloadRodata(base=0x400078)
        reference = lower_program(program, 0, abi, rodata)
        starts = sorted(rodata.starts)

        def concrete(v):
            if isinstance(v, PayloadAddr):
                return Imm(starts[v.index] + v.offset)
            if dataclasses.is_dataclass(v) and not isinstance(v, type):
                return dataclasses.replace(v, **{f.name: concrete(getattr(v, f.name))
                                                 for f in dataclasses.fields(v)})
            return tuple(concrete(x) for x in v) if isinstance(v, tuple) else v

        ops = lower_one(program, abi).ops
        driver = lower_driver(1, abi, DEFAULT_WATCHDOG_MS)
        assert list(ops[:len(driver)]) == driver
        assert [concrete(op) for op in ops[len(driver):]] == reference, program.name


@pytest.mark.parametrize("isa", TARGETS)
def test_the_syscall_wrappers_come_from_the_table(isa):
    program = PROGRAMS["01-pipe-roundtrip"]
    abi = dataclasses.replace(ABIS[isa], trap="int 0x80")
    c, rust = c_source(program, abi), rust_source(program, abi)
    assert "int 0x80" in c[c.index("__asm__ volatile"):] and 'asm!("int 0x80"' in rust
    for reg in (abi.number_reg, *abi.arg_regs, *abi.clobbers):
        assert f'__asm__("{reg}")' in c or f'"{reg}"' in c
        assert f'("{reg}")' in rust
    assert "#if" not in c


def test_probes_say_that_they_need_the_assembly_reproducer():
    probed = next(p for p in PROGRAMS.values() if any(loc.op.probe for loc in walk(p)))
    for abi in ABIS.values():
        assert "probe: the assembly ELF checks every register here" in c_source(probed, abi)
        assert "probe: the assembly ELF checks every register here" in rust_source(probed, abi)


def test_an_isa_without_a_toolchain_is_named():
    abi = dataclasses.replace(ABIS["x86_64"], isa="riscv64")
    with pytest.raises(ValueError, match="riscv64.*supported: aarch64, x86_64"):
        c_source(PROGRAMS["01-pipe-roundtrip"], abi)


# --- C -----------------------------------------------------------------------------------

def test_c_builds_with_the_plain_freestanding_flags():
    """gcc -nostdlib -static -ffreestanding -O1 alone builds it (the header adds placement)."""
    cc = c_compiler_or_skip("x86_64")
    source = c_source(PROGRAMS["01-pipe-roundtrip"], ABIS["x86_64"])
    elf = compile_source(source, lambda s, o: [cc, *C_FLAGS[:4], "-o", o, s], "c")
    assert elf.startswith(b"\x7fELF")


@pytest.mark.e2e
@pytest.mark.parametrize("isa", TARGETS)
@pytest.mark.parametrize("name", PROGRAMS)
def test_c_reproducer_agrees_with_the_elf(isa, name):
    c_compiler_or_skip(isa)
    runner_or_skip(TARGETS[isa])
    binary = c_binaries(isa)[name]
    assert isinstance(binary, bytes), binary
    agrees_with_elf(PROGRAMS[name], isa, binary)


# --- Rust --------------------------------------------------------------------------------

@pytest.mark.e2e
@pytest.mark.parametrize("isa", TARGETS)
@pytest.mark.parametrize("name", RUST_PROGRAMS)
def test_rust_reproducer_builds_and_agrees_with_the_elf(isa, name):
    abi = ABIS[isa]
    why = rust_unavailable(abi)
    if why:
        pytest.skip(why)
    binary = build_rust(rust_source(PROGRAMS[name], abi), abi)
    agrees_with_elf(PROGRAMS[name], isa, binary)


@pytest.mark.parametrize("isa", TARGETS)
def test_rust_builds_with_the_plain_no_std_command(isa):
    """rustc with only the no_std flags and the target builds it (the header adds placement)."""
    abi = ABIS[isa]
    why = rust_unavailable(abi)
    if why:
        pytest.skip(why)
    source = rust_source(PROGRAMS["01-pipe-roundtrip"], abi)
    target = toolchain(abi).rust_target
    elf = compile_source(source, lambda s, o: ["rustc", *RUST_FLAGS, "--target", target,
                                               "-o", o, s], "rs")
    assert elf.startswith(b"\x7fELF")
