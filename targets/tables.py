"""ABI tables: one TOML file per (os, isa) in targets/abi/, loaded into a frozen `Abi`.

A table may `inherits = "other"` to share values; the child's keys win, tables merge per
section, except the sections named in `replace = [...]`, which the child gives whole. Every problem in a table is reported at once, as `file: message` lines.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

ABI_DIR = Path(__file__).parent / "abi"


class AbiError(ValueError):
    """A table is missing, malformed or incomplete; the message lists every problem."""


@dataclass(frozen=True)
class Layout:
    """A struct layout: total size and field name -> (offset, size)."""

    size: int
    fields: Mapping[str, tuple[int, int]]

    def offset(self, field: str) -> int:
        """The byte offset of a field."""
        return self.fields[field][0]


@dataclass(frozen=True, kw_only=True)
class Abi:
    """Everything the suite knows about one OS ABI on one ISA."""

    name: str
    os: str
    isa: str
    elf_machine: int
    keystone_arch: str
    keystone_mode: str
    qemu_user: str | None
    trap: str
    number_reg: str
    arg_regs: tuple[str, ...]
    result_reg: str
    clobbers: tuple[str, ...]
    syscalls: Mapping[str, int]
    errno: Mapping[str, int]
    signals: Mapping[str, int]
    flags: Mapping[str, int]
    limits: Mapping[str, int]
    layouts: Mapping[str, Layout]
    si_codes: Mapping[str, int]
    frame_gregs_from_sp: int
    frame_gregs: tuple[str, ...]
    probe_gprs: tuple[str, ...]
    probe_simd: tuple[str, ...]
    arg_bits: int = 64        # how many low bits of each argument register the kernel reads

    def frame_offset(self, register: str) -> int:
        """Where a handler finds the saved copy of `register`, from its stack pointer at entry."""
        return self.frame_gregs_from_sp + 8 * self.frame_gregs.index(register)

    def has(self, call: str) -> bool:
        """Whether the ABI has a syscall of that name."""
        return call in self.syscalls

    def nr(self, call: str) -> int:
        """The syscall number of `call`; AbiError naming the ABI if it has none."""
        try:
            return self.syscalls[call]
        except KeyError:
            raise AbiError(f"{self.name}: no syscall {call!r} in the table") from None

    def const(self, name: str) -> int:
        """The value of a named constant: a flag, signal or errno name."""
        for table in (self.flags, self.signals, self.errno):
            if name in table:
                return table[name]
        raise AbiError(f"{self.name}: no constant {name!r} in the table")

    def si_code_name(self, number: int, signal: str | int) -> str | None:
        """The name of a si_code value (CLD_* names only for SIGCHLD)."""
        for name, value in self.si_codes.items():
            if value == number and name.startswith("CLD_") == (signal == "SIGCHLD"):
                return name
        return None

    def errno_name(self, number: int) -> str | None:
        """The symbolic name of an errno number, if the table knows it."""
        return _reverse(self.name, "errno").get(number)

    def signal_name(self, number: int) -> str | None:
        """The symbolic name of a signal number, if the table knows it."""
        return _reverse(self.name, "signals").get(number)


@cache
def _reverse(abi_name: str, section: str) -> dict[int, str]:
    table = getattr(load(abi_name), section)
    return {v: k for k, v in table.items()}


REQUIRED_SYSCALLS = ("read", "write", "close", "getpid", "getppid", "wait4", "kill",
                     "setpgid", "getpgid", "exit_group", "rt_sigaction", "rt_sigreturn",
                     "rt_sigprocmask", "rt_sigpending", "rt_sigsuspend", "sigaltstack",
                     "setitimer", "getitimer", "nanosleep", "ppoll", "prctl", "fcntl")


def _raw(name: str, seen: tuple[str, ...] = ()) -> dict:
    path = ABI_DIR / f"{name}.toml"
    if name in seen:
        raise AbiError(f"{path}: inherits loop: {' -> '.join(seen + (name,))}")
    if not path.is_file():
        raise AbiError(f"unknown ABI {name!r} (known: {', '.join(known())})")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise AbiError(f"{path}: {exc}") from None
    parent = data.pop("inherits", None)
    replace = data.pop("replace", [])  # sections taken whole instead of merged, e.g. syscalls
    if parent is None:
        return data
    merged = _raw(parent, seen + (name,))
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in replace:
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def known() -> list[str]:
    """Names of the complete ABI tables (those that name an ISA)."""
    names = []
    for path in sorted(ABI_DIR.glob("*.toml")):
        try:
            if "isa" in tomllib.loads(path.read_text()):
                names.append(path.stem)
        except tomllib.TOMLDecodeError:
            names.append(path.stem)  # still listed, so that loading it reports the error
    return names


@cache
def load(name: str) -> Abi:
    """Load and check one ABI table by name (e.g. "linux-aarch64")."""
    data = _raw(name)
    path = ABI_DIR / f"{name}.toml"
    problems: list[str] = []

    def need(section: dict, key: str, where: str, kind: type = str):
        if key not in section:
            problems.append(f"missing {where}{key}")
            return kind()
        if not isinstance(section[key], kind):
            problems.append(f"{where}{key} should be a {kind.__name__}, got {section[key]!r}")
            return kind()
        return section[key]

    syscall = need(data, "syscall", "", dict)
    keystone = need(data, "keystone", "", dict)
    syscalls = need(data, "syscalls", "", dict)
    frame = need(data, "frame", "", dict)
    probe = need(data, "probe", "", dict)
    for call in REQUIRED_SYSCALLS:
        if call not in syscalls:
            problems.append(f"missing syscalls.{call}")
    for section in ("syscalls", "errno", "signals", "flags", "limits"):
        for key, value in data.get(section, {}).items():
            if not isinstance(value, int) or isinstance(value, bool):
                problems.append(f"{section}.{key} should be an integer, got {value!r}")
    by_number: dict[int, list[str]] = {}
    for call, number in syscalls.items():
        if isinstance(number, int):
            by_number.setdefault(number, []).append(call)
    problems += [f"syscalls {' and '.join(calls)} share number {n}"
                 for n, calls in by_number.items() if len(calls) > 1]
    for alternatives in (("pipe", "pipe2"), ("fork", "clone"), ("dup2", "dup3")):
        if not any(a in syscalls for a in alternatives):
            problems.append(f"syscalls needs one of {' / '.join(alternatives)}")
    layouts: dict[str, Layout] = {}
    for lname, ldata in data.get("layout", {}).items():
        fields = {k: tuple(v) for k, v in ldata.items() if k != "size"}
        bad = [k for k, (off, size) in fields.items() if off + size > ldata.get("size", 0)]
        if "size" not in ldata or bad:
            problems.append(f"layout.{lname}: fields {bad} outside size {ldata.get('size')}")
        layouts[lname] = Layout(ldata.get("size", 0), MappingProxyType(fields))
    abi = Abi(
        name=name,
        os=need(data, "os", ""),
        isa=need(data, "isa", ""),
        elf_machine=need(data, "elf_machine", "", int),
        keystone_arch=need(keystone, "arch", "keystone."),
        keystone_mode=need(keystone, "mode", "keystone."),
        qemu_user=data.get("qemu_user"),
        trap=need(syscall, "instruction", "syscall."),
        number_reg=need(syscall, "number", "syscall."),
        arg_regs=tuple(need(syscall, "args", "syscall.", list)),
        result_reg=need(syscall, "result", "syscall."),
        clobbers=tuple(syscall.get("clobbers", ())),
        syscalls=MappingProxyType(dict(syscalls)),
        errno=MappingProxyType(dict(data.get("errno", {}))),
        signals=MappingProxyType(dict(data.get("signals", {}))),
        flags=MappingProxyType(dict(data.get("flags", {}))),
        limits=MappingProxyType(dict(data.get("limits", {}))),
        layouts=MappingProxyType(layouts),
        si_codes=MappingProxyType(dict(data.get("si_codes", {}))),
        frame_gregs_from_sp=need(frame, "gregs_from_sp", "frame.", int),
        frame_gregs=tuple(need(frame, "gregs", "frame.", list)),
        probe_gprs=tuple(need(probe, "gprs", "probe.", list)),
        probe_simd=tuple(need(probe, "simd", "probe.", list)),
        arg_bits=syscall.get("arg_bits", 64),
    )
    for limit in ("MINSIGSTKSZ", "SIGSTKSZ", "handler_sp_mod16"):
        if limit not in abi.limits:
            problems.append(f"missing limits.{limit}")
    if abi.arg_bits not in (32, 64):
        problems.append(f"syscall.arg_bits must be 32 or 64, got {abi.arg_bits!r}")
    if len(abi.arg_regs) < 6:
        problems.append(f"syscall.args lists {len(abi.arg_regs)} registers, need 6")
    if problems:
        raise AbiError(f"{path}: {'; '.join(problems)}")
    return abi
