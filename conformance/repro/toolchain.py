"""Facts about building reproducers that the ABI tables do not hold, one entry per ISA.

Everything about the kernel interface (trap, registers, numbers, layouts) comes from the ABI
table; this holds only compiler and assembler spellings. It is the one ISA switch of
`conformance.repro`: exhaustive, and an unknown ISA is an error naming the supported ones.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from conformance.lower import Memory
from targets.runners.native import HOST_ISA
from targets.tables import Abi

MEM_SECTION = ".cfmem"
C_FLAGS = ("-nostdlib", "-static", "-ffreestanding", "-O1", "-fno-stack-protector")
RUST_FLAGS = ("--edition", "2021", "--crate-type", "bin", "-C", "panic=abort",
              "-C", "opt-level=1", "-C", "link-arg=-nostartfiles", "-C", "link-arg=-static")


@dataclass(frozen=True, kw_only=True)
class Toolchain:
    """How to build and enter a freestanding program for one ISA."""

    cross_cc: str                 # the cross compiler's name
    cross_package: str            # the Debian package that installs it
    cflags: tuple[str, ...] = ()  # beyond C_FLAGS
    rustflags: tuple[str, ...] = ()  # beyond RUST_FLAGS
    gnu_c_dialect: tuple[str, str] = ("", "")  # directives around emitter-syntax text in C asm
    call: str                     # the call instruction (leaves sp as a callee expects it)
    stack_pointer: str
    c_arg_regs: tuple[str, ...]   # the C calling convention's first argument registers
    rust_target: str


TOOLCHAINS = {
    "x86_64": Toolchain(
        cross_cc="x86_64-linux-gnu-gcc", cross_package="gcc-x86-64-linux-gnu",
        # the emitters speak keystone's Intel syntax; GNU C's asm defaults to AT&T
        gnu_c_dialect=(".intel_syntax noprefix", ".att_syntax prefix"),
        call="call", stack_pointer="rsp", c_arg_regs=("rdi", "rsi", "rdx"),
        rust_target="x86_64-unknown-linux-gnu"),
    "aarch64": Toolchain(
        cross_cc="aarch64-linux-gnu-gcc", cross_package="gcc-aarch64-linux-gnu",
        # outline atomics call helpers that need libc's getauxval: inline LL/SC loops instead
        cflags=("-mno-outline-atomics",), rustflags=("-C", "target-feature=-outline-atomics"),
        call="bl", stack_pointer="sp", c_arg_regs=("x0", "x1", "x2"),
        rust_target="aarch64-unknown-linux-gnu"),
}


def toolchain(abi: Abi) -> Toolchain:
    """The toolchain facts for the ABI's ISA; ValueError naming the supported ISAs otherwise."""
    try:
        return TOOLCHAINS[abi.isa]
    except KeyError:
        raise ValueError(f"no reproducer toolchain for ISA {abi.isa!r} ({abi.name}); "
                         f"supported: {', '.join(sorted(TOOLCHAINS))}") from None


def link_flags() -> tuple[str, ...]:
    """Place the state at Memory.BASE, as in the ELF (records show alternate-stack addresses)."""
    return (f"-Wl,--section-start={MEM_SECTION}={Memory.BASE:#x}",)


def native(abi: Abi) -> bool:
    """Whether this host runs the ABI's ISA (no cross compiler needed)."""
    return HOST_ISA.get(platform.machine().lower()) == abi.isa


def c_compiler(abi: Abi) -> str | None:
    """A C compiler on PATH for the ABI's ISA (the host's gcc when the ISAs match), or None."""
    names = (["gcc"] if native(abi) else []) + [toolchain(abi).cross_cc]
    return next((n for n in names if shutil.which(n)), None)


def c_command(abi: Abi, source: str, output: str, cc: str | None = None) -> list[str]:
    """The command that builds a C reproducer."""
    tc = toolchain(abi)
    return [cc or tc.cross_cc, *C_FLAGS, *tc.cflags, *link_flags(), "-o", output, source]


def rust_command(abi: Abi, source: str, output: str, linker: str | None = None) -> list[str]:
    """The command that builds a Rust reproducer (`linker`: a cross compiler driver)."""
    tc = toolchain(abi)
    links = [a for flag in link_flags() for a in ("-C", f"link-arg={flag}")]
    cross = ["-C", f"linker={linker}"] if linker else []
    return ["rustc", *RUST_FLAGS, *tc.rustflags, *links, *cross, "--target", tc.rust_target,
            "-o", output, source]


class BuildError(RuntimeError):
    """A compiler rejected a reproducer; the message holds its command and diagnostics."""


def compile_source(source: str, command, suffix: str) -> bytes:
    """Build `source` with `command(source_path, output_path)` and return the binary."""
    with tempfile.TemporaryDirectory(prefix="conformance-repro-") as tmp:
        src, out = os.path.join(tmp, f"repro.{suffix}"), os.path.join(tmp, "repro")
        with open(src, "w") as fh:
            fh.write(source)
        argv = command(src, out)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise BuildError(f"{' '.join(argv)}\n{proc.stderr.strip()}")
        with open(out, "rb") as fh:
            return fh.read()


def build_c(source: str, abi: Abi, cc: str | None = None) -> bytes:
    """Compile a C reproducer for `abi` (with `cc`, else the one `c_compiler` finds)."""
    cc = cc or c_compiler(abi)
    if cc is None:
        raise BuildError(f"no C compiler for {abi.isa} on PATH (Debian: apt-get install "
                         f"{toolchain(abi).cross_package})")
    return compile_source(source, lambda s, o: c_command(abi, s, o, cc), "c")


def build_rust(source: str, abi: Abi) -> bytes:
    """Compile a Rust reproducer for `abi` (linking with the cross compiler off its ISA)."""
    linker = None if native(abi) else toolchain(abi).cross_cc
    return compile_source(source, lambda s, o: rust_command(abi, s, o, linker), "rs")


def rust_unavailable(abi: Abi) -> str | None:
    """None if rustc can build for the ABI's ISA here, else why not."""
    if shutil.which("rustc") is None:
        return "rustc is not on PATH (https://rustup.rs)"
    target = toolchain(abi).rust_target
    proc = subprocess.run(["rustc", "--print", "target-libdir", "--target", target],
                          capture_output=True, text=True)
    libdir = proc.stdout.strip()
    found = os.listdir(libdir) if proc.returncode == 0 and os.path.isdir(libdir) else ()
    if not any(name.startswith("libcore-") for name in found):
        return f"rustc has no core library for {target} (rustup target add {target})"
    return None
