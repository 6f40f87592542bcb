"""ABI tables: completeness, inheritance, and errors that name the file and every problem."""
from __future__ import annotations

import pytest

from conformance.ir import PIPE_FLAGS, SIGNAL_NAMES, WAIT_FLAGS
from conformance.emit import EMITTERS
from targets import tables


@pytest.mark.parametrize("name", tables.known())
def test_every_table_is_complete(name):
    abi = tables.load(name)
    assert abi.isa in EMITTERS, f"{name}: no emitter for {abi.isa}"
    for sig in SIGNAL_NAMES:
        assert sig in abi.signals, f"{name}: no {sig}"
    for flag in PIPE_FLAGS + WAIT_FLAGS:
        assert flag in abi.flags
    assert len(abi.arg_regs) == 6 and abi.trap and abi.number_reg
    assert set(abi.layouts) >= {"sigaction", "itimerval"}


def test_isa_tables_inherit_the_generic_values():
    x86, arm = tables.load("linux-x86_64"), tables.load("linux-aarch64")
    assert x86.errno == arm.errno and x86.signals == arm.signals
    assert x86.nr("write") == 1 and arm.nr("write") == 64
    assert not arm.has("pipe") and not arm.has("fork") and not arm.has("dup2")


def test_unknown_table_lists_the_known_ones():
    with pytest.raises(tables.AbiError, match=r"unknown ABI 'linux-mips' \(known: linux-aarch64, linux-x86_64\)"):
        tables.load("linux-mips")


def test_incomplete_table_reports_every_problem(tmp_path, monkeypatch):
    (tmp_path / "linux-generic.toml").write_text((tables.ABI_DIR / "linux-generic.toml").read_text())
    (tmp_path / "broken.toml").write_text(
        'inherits = "linux-generic"\nisa = "x"\nelf_machine = "62"\n'
        '[syscall]\ninstruction = "svc"\nnumber = "x8"\nargs = ["x0"]\nresult = "x0"\n'
        '[syscalls]\nread = 1\n')
    monkeypatch.setattr(tables, "ABI_DIR", tmp_path)
    tables.load.cache_clear()
    try:
        with pytest.raises(tables.AbiError) as info:
            tables.load("broken")
    finally:
        tables.load.cache_clear()
    assert len(str(info.value).splitlines()) == 1  # every problem, on one line
    assert str(info.value).startswith(str(tmp_path / "broken.toml") + ": ")
    text = str(info.value)
    for expected in ("missing keystone", "elf_machine should be a int", "missing syscalls.write",
                     "syscalls needs one of pipe / pipe2", "syscall.args lists 1 registers"):
        assert expected in text


def test_wrong_typed_and_conflicting_entries_are_reported(tmp_path, monkeypatch):
    for name in ("linux-generic", "linux-x86_64"):
        (tmp_path / f"{name}.toml").write_text((tables.ABI_DIR / f"{name}.toml").read_text())
    (tmp_path / "clash.toml").write_text(
        'inherits = "linux-x86_64"\n[syscalls]\nread = "zero"\ndup = 1\n[errno]\nEPERM = 1.5\n')
    monkeypatch.setattr(tables, "ABI_DIR", tmp_path)
    tables.load.cache_clear()
    try:
        with pytest.raises(tables.AbiError) as info:
            tables.load("clash")
    finally:
        tables.load.cache_clear()
    text = str(info.value)
    assert "syscalls.read should be an integer, got 'zero'" in text
    assert "errno.EPERM should be an integer, got 1.5" in text
    assert "syscalls write and dup share number 1" in text
