"""Asynchronous signal injection on the reference machine (targets/runners/reference/inject.py):
which points are swept, that a correct machine keeps the invariant, that a seeded sigreturn
bug is found at the first instruction where it shows, and the CLI option."""
from __future__ import annotations

import pytest

pytest.importorskip("unicorn", reason="the reference machine needs unicorn (pip install unicorn)")

from conformance.batch import build
from conformance.cli import load_corpus, main
from e2e import runner_or_skip
from targets.runners.reference.codemap import CodeMap
from targets.runners.reference.inject import describe, not_sweepable, sweep
from targets.runners.reference.machine import Machine
from targets.tables import load

# One register per ISA that sigreturn forgets in the seeded bug: callee-saved, so only a
# probe's snapshot holds it live, and only between its two snapshots.
FORGOTTEN = {"linux-x86_64": "rbx", "linux-aarch64": "x19"}

HANDLER_THEN_PROBE = """
    # a handler for SIGUSR1, then a register probe around getpid
    sigaction(SIGUSR1, handler)
    probe getpid()
"""


@pytest.mark.parametrize("abi_name", sorted(FORGOTTEN))
def test_a_sigreturn_that_forgets_a_register_is_found_where_it_first_shows(parse, abi_name):
    """The uninjected run agrees with the oracle (no signal spans the probe); injecting at
    every instruction finds the bug at the first point after the probe has saved the register:
    the handler's clobber then survives sigreturn, and the probe's second snapshot differs."""
    abi, reg = load(abi_name), FORGOTTEN[abi_name]
    program = parse(HANDLER_THEN_PROBE)
    found = sweep(program, abi, sigreturn_skips=(reg,), first_only=True)
    assert found.baseline == "agrees" and found.breaks, describe(found)
    first = found.breaks[0]
    lines = CodeMap(build([program], abi)).lines
    before = lines[lines.index(first.line) - 1]
    assert first.line.op == 1 and reg in before.text, describe(found)
    assert "record 1 differs" in first.detail and "p0 R(1," in first.detail
    clean = sweep(program, abi, every=3)
    assert clean.swept > 30 and not clean.breaks, describe(clean)


@pytest.mark.parametrize("abi_name", sorted(FORGOTTEN))
@pytest.mark.parametrize("name, skipped", [
    ("135-probe-sigsuspend", {"no handler installed", "signal blocked"}),
    ("114-write-partial-signal-from-reader", {"no handler installed",
                                              "records still the parent's (after fork)"}),
    ("141-probe-sigsuspend-altstack-nested", {"no handler installed", "signal blocked"}),
])
def test_corpus_programs_keep_the_invariant(abi_name, name, skipped):
    program = next(p for p in load_corpus("signals") if p.name == name)
    result = sweep(program, load(abi_name), every=3)
    assert result.baseline == "agrees" and result.swept > 5 and not result.breaks, \
        describe(result)
    assert set(result.skipped) == skipped


def test_programs_that_cannot_be_swept_say_why(parse):
    assert not_sweepable(parse("getpid()"), "SIGUSR1") == \
        "installs no recording handler for SIGUSR1"
    assert "installs no recording handler" in not_sweepable(
        parse("sigaction(SIGUSR2, handler)"), "SIGUSR1")
    assert not_sweepable(parse("sigaction(SIGUSR1, handler)\nspin()"), "SIGUSR1") == \
        "spin() ends when any handler runs"
    result = sweep(parse("getpid()"), load("linux-x86_64"))
    assert describe(result) == ["x86_64 : not sweepable (installs no recording handler for "
                                "SIGUSR1)"]


def test_the_seeded_bug_names_a_register_the_isa_has():
    abi = load("linux-aarch64")
    with pytest.raises(KeyError, match="aarch64: no register 'rbx'"):
        Machine(build(load_corpus("basic")[:1], abi).elf, abi, sigreturn_skips=("rbx",))


def test_the_code_map_names_every_instruction_of_the_batch():
    abi = load("linux-x86_64")
    batch = build(load_corpus("basic")[:2], abi)
    code = CodeMap(batch)
    assert code.lines[0].address == code.code_at and code.lines[0].label == "_start"
    ops = {line.op for line in code.lines if line.op is not None}
    assert ops == set(range(len(batch.programs[0].body))) | set(range(
        len(batch.programs[1].body)))
    assert all(a.address < b.address for a, b in zip(code.lines, code.lines[1:]))


def test_cli_sweeps_a_corpus_on_the_reference_targets(tmp_path, capsys):
    (tmp_path / "a.prog").write_text(HANDLER_THEN_PROBE)
    (tmp_path / "b.prog").write_text("getpid()\n")
    status = main(["run", "--inject-signal-at", "4", "--targets", "x86_64-ref,aarch64-ref",
                   "--corpus", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "x86_64-ref a: " in out and "aarch64-ref a: " in out and "0 broke" in out
    assert "x86_64-ref b: not sweepable" in out
    assert out.splitlines()[-1].startswith("2 program runs swept")


@pytest.mark.parametrize("target, reg", [("x86_64-ref", "rbx"), ("aarch64-ref", "x19")])
def test_cli_finds_a_sigreturn_that_skips_a_register(tmp_path, capsys, target, reg):
    (tmp_path / "a.prog").write_text(HANDLER_THEN_PROBE)
    status = main(["run", "--inject-signal-at", "every", "--targets", target, "--corpus",
                   str(tmp_path), "--inject-fault", f"sigreturn-skips={reg}"])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "uninjected run: agrees" in out and "first at point" in out and "op 1 (probe" in out
    assert "record 1 differs" in out


@pytest.mark.parametrize("argv, message", [
    (["--inject-fault", "sigreturn-skips=rbx"], "use it with --inject-signal-at"),
    (["--inject-signal-at", "every", "--targets", "aarch64-ref", "--inject-fault",
      "sigreturn-skips=rbx"], "aarch64-ref (linux-aarch64) saves no such register"),
    (["--inject-signal-at", "0", "--targets", "x86_64-ref"], "'every' or a positive number"),
    (["--inject-signal-at", "every"], "name its targets with --targets"),
    (["--inject-signal-at", "every", "--targets", "x86_64-ref", "--inject-signal", "SIGFOO"],
     "--inject-signal 'SIGFOO'"),
])
def test_cli_usage_errors(argv, message, capsys):
    assert main(["run", "--corpus", "basic"] + argv) == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_other_targets(capsys):
    runner_or_skip("x86_64-native")
    assert main(["run", "--corpus", "basic", "--inject-signal-at", "every", "--targets",
                 "x86_64-ref,x86_64-native"]) == 2
    assert "(not x86_64-native)" in capsys.readouterr().err
