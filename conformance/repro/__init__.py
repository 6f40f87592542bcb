"""Reproducers: one program's micro-ops as standalone C or Rust a kernel developer can build.

Both backends translate the same micro-ops the assembly ELF is built from (the batch driver
for one program, then the program), so a reproducer writes the records the ELF writes.
"""
from conformance.repro.c import c_source
from conformance.repro.common import lower_one
from conformance.repro.rust import rust_source
from conformance.repro.toolchain import (
    BuildError, build_c, build_rust, c_command, c_compiler, rust_command, rust_unavailable,
    toolchain,
)

__all__ = ["c_source", "rust_source", "lower_one", "build_c", "build_rust", "BuildError",
           "c_command", "c_compiler", "rust_command", "rust_unavailable", "toolchain"]
