"""Every target the suite knows, in one tuple; `get(name)` looks one up."""
from __future__ import annotations

from targets.runners.base import Runner, TargetError, elf_isa
from targets.runners.native import NativeRunner
from targets.runners.qemu_user import QemuUserRunner
from targets.runners.reference import ReferenceRunner
from targets.runners.sandbox import RunResult
from targets.runners.vm import ConfigError, VmRunner, load_config, shipped_configs

_QEMU_USER = "conformance setup   (Debian qemu-user; or any qemu-user build on PATH)"

RUNNERS: tuple[Runner, ...] = (
    NativeRunner("x86_64-native", "linux-x86_64", enable="run on an x86-64 Linux host"),
    NativeRunner("aarch64-native", "linux-aarch64", enable="run on an aarch64 Linux host"),
    QemuUserRunner("x86_64-qemu-user", "linux-x86_64", enable=_QEMU_USER),
    QemuUserRunner("aarch64-qemu-user", "linux-aarch64", enable=_QEMU_USER),
    ReferenceRunner("x86_64-ref", "linux-x86_64"), ReferenceRunner("aarch64-ref", "linux-aarch64"),
    # a hobby kernel's ABI no kernel here speaks: int 0x80 / svc #0 with Breenix's numbers
    ReferenceRunner("x86_64-breenix-legacy-ref", "breenix-legacy-x86_64"),
    ReferenceRunner("aarch64-breenix-legacy-ref", "breenix-legacy-aarch64"),
) + tuple(VmRunner.from_config(c) for c in shipped_configs())
DEFAULT_TARGETS = ("x86_64-native", "aarch64-native", "x86_64-qemu-user", "aarch64-qemu-user",
                   "x86_64-linux-vm", "aarch64-linux-vm")
_EXTRA: list[Runner] = []


def add_config(path) -> Runner:
    """Make the VM target described by a user's TOML file known (ConfigError if it is bad)."""
    from pathlib import Path
    runner = VmRunner.from_config(load_config(Path(path)))
    if any(r.name == runner.name for r in RUNNERS + tuple(_EXTRA)):
        raise ConfigError(f"{path}: target name {runner.name!r} is already taken")
    _EXTRA.append(runner)
    return runner


def known() -> tuple[Runner, ...]:
    """Every target: the shipped ones and those added from config files."""
    return RUNNERS + tuple(_EXTRA)


def get(name: str) -> Runner:
    """The runner called `name`; TargetError listing the known names otherwise."""
    for runner in known():
        if runner.name == name:
            return runner
    raise TargetError(f"unknown target {name!r} (known: {', '.join(r.name for r in known())})")


__all__ = ["RUNNERS", "DEFAULT_TARGETS", "ConfigError", "add_config", "known", "Runner", "RunResult", "TargetError", "elf_isa", "get"]
