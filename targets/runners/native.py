"""The host kernel, running ELFs of the host's own ISA directly (inside the sandbox)."""
from __future__ import annotations

import platform
from dataclasses import dataclass

from targets.runners.base import Runner
from targets.runners.sandbox import limits_unavailable

HOST_ISA = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


@dataclass(frozen=True)
class NativeRunner(Runner):
    """Runs the ELF as a process of the host kernel."""

    def unavailable(self) -> str | None:
        host = HOST_ISA.get(platform.machine().lower(), platform.machine())
        if host != self.isa:
            return f"the host is {host}, not {self.isa}"
        return limits_unavailable()

    def version(self) -> str:
        return f"Linux {platform.release()} (host kernel)"

    def argv(self) -> list[str]:
        return []
