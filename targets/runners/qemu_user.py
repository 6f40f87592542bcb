"""QEMU's linux-user emulation: the guest's syscalls are translated to the host kernel's."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import cache

from targets.runners.base import Runner
from targets.runners.sandbox import limits_unavailable


@cache
def command_version(binary: str) -> str:
    """The first line of `binary --version` (QEMU's own version line)."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.splitlines()[0].strip() if out.stdout else "unknown version"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown version"


@dataclass(frozen=True)
class QemuUserRunner(Runner):
    """Runs the ELF under qemu-<isa> found on PATH (the ABI table names the binary)."""

    # qemu-user (7.2) rejects PR_SET_CHILD_SUBREAPER with EINVAL: a lane could not reap its
    # programs' orphans (they go to the sandbox's pid 1, the driver), so one lane per batch.
    lanes: int = 1
    # ... so its programs overlap as separate batches instead: each is its own qemu process
    # in its own sandbox, and mostly waits on timers. 1000 generated programs (seed 3) took
    # 16.6 s with 16 in flight, 15.1 with 32, 14.6 with 48 on aarch64 (x86-64: 15.7, 13.5, 13.6).
    jobs: int | None = 32

    def binary(self) -> str:
        """The qemu-user binary for this ISA."""
        return self.abi.qemu_user or f"qemu-{self.isa}"

    def unavailable(self) -> str | None:
        if shutil.which(self.binary()) is None:
            return f"{self.binary()} is not on PATH"
        return limits_unavailable()

    def version(self) -> str:
        return command_version(shutil.which(self.binary()) or self.binary())

    def argv(self) -> list[str]:
        return [shutil.which(self.binary()) or self.binary()]
