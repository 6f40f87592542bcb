"""Every target the suite knows, in one tuple; `get(name)` looks one up."""
from __future__ import annotations

from targets.runners.base import Runner, TargetError, elf_isa
from targets.runners.native import NativeRunner
from targets.runners.qemu_user import QemuUserRunner
from targets.runners.sandbox import RunResult

_QEMU_USER = "apt-get install qemu-user   (Debian; or any qemu-user build on PATH)"

RUNNERS: tuple[Runner, ...] = (
    NativeRunner("x86_64-native", "linux-x86_64", enable="run on an x86-64 Linux host"),
    NativeRunner("aarch64-native", "linux-aarch64", enable="run on an aarch64 Linux host"),
    QemuUserRunner("x86_64-qemu-user", "linux-x86_64", enable=_QEMU_USER),
    QemuUserRunner("aarch64-qemu-user", "linux-aarch64", enable=_QEMU_USER),
)
DEFAULT_TARGETS = ("x86_64-native", "aarch64-native", "x86_64-qemu-user", "aarch64-qemu-user")


def get(name: str) -> Runner:
    """The runner called `name`; TargetError listing the known names otherwise."""
    for runner in RUNNERS:
        if runner.name == name:
            return runner
    raise TargetError(f"unknown target {name!r} (known: {', '.join(r.name for r in RUNNERS)})")


__all__ = ["RUNNERS", "DEFAULT_TARGETS", "Runner", "RunResult", "TargetError", "elf_isa", "get"]
