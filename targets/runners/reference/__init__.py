"""The reference machine: batch ELFs on unicorn, their syscalls served by the oracle's kernel.

`ReferenceRunner` is the target (`x86_64-ref`, `aarch64-ref`); `Machine` is one run. The
per-ISA facts are in `isa`, the signal frames in `frames`, raw-call translation in `syscalls`
and `sigcalls`, conversions through the ABI table in `codec`.
"""
from __future__ import annotations

from targets.runners.reference.runner import ReferenceRunner

__all__ = ["ReferenceRunner"]
