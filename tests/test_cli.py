"""The command line: bad input gets one `error:` line and a documented exit status."""
from __future__ import annotations

import json

import pytest

from conformance import cli
from e2e import runner_or_skip

GOOD = "# pipe round trip\nr, w = pipe()\nwrite(w, \"hi\")\nread(r, 8)\n"


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def prog(tmp_path):
    path = tmp_path / "good.prog"
    path.write_text(GOOD)
    return path


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_malformed_program_names_file_line_and_column(capsys, tmp_path):
    bad = tmp_path / "bad.prog"
    bad.write_text("r, w = pipe()\nwrite(w, \"x\"\n")
    status, _, err = run(capsys, "show", str(bad))
    assert status == cli.EXIT_USAGE
    assert one_error_line(err) == f"error: {bad}:2:13: missing ')'"


def test_unknown_target(capsys, prog):
    status, _, err = run(capsys, "run", "--targets", "riscv64-native", "--corpus", str(prog))
    assert status == cli.EXIT_USAGE
    assert "unknown target 'riscv64-native' (known: x86_64-native" in one_error_line(err)


def test_missing_qemu_is_one_line_with_the_fix(capsys, prog, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no qemu-aarch64 anywhere
    status, _, err = run(capsys, "run", "--targets", "aarch64-qemu-user", "--corpus", str(prog))
    assert status == cli.EXIT_UNAVAILABLE
    line = one_error_line(err)
    assert "target aarch64-qemu-user is not available: qemu-aarch64 is not on PATH" in line
    assert "conformance setup" in line and "qemu-user" in line


def test_default_targets_report_absent_ones_as_not_run(capsys, prog, monkeypatch, tmp_path):
    runner_or_skip("x86_64-native")
    monkeypatch.setenv("PATH", str(tmp_path))
    status, out, err = run(capsys, "run", "--corpus", str(prog))
    assert status == cli.EXIT_OK
    assert "aarch64-qemu-user: not run (qemu-aarch64 is not on PATH; enable: conformance setup" in out
    assert "x86_64-native: 1 programs: 1 agrees" in out
    # no aarch64 target left: the reference machine stands in, and says so
    assert "aarch64: no other target available here; running aarch64-ref" in err
    assert "aarch64-ref: 1 programs: 1 agrees" in out


def test_elf_the_target_cannot_execute(capsys, prog, tmp_path):
    runner_or_skip("x86_64-native")
    elf = tmp_path / "t.elf"
    assert run(capsys, "emit", str(prog), "--isa", "aarch64", "-o", str(elf))[0] == cli.EXIT_OK
    status, _, err = run(capsys, "exec", str(elf), "--target", "x86_64-native")
    assert status == cli.EXIT_USAGE
    assert one_error_line(err) == f"error: {elf} is an aarch64 ELF; target x86_64-native runs x86_64"
    (tmp_path / "notelf").write_bytes(b"#!/bin/sh\n")
    status, _, err = run(capsys, "exec", str(tmp_path / "notelf"), "--target", "x86_64-native")
    assert status == cli.EXIT_USAGE and "is not an ELF file" in one_error_line(err)


def test_an_abi_table_with_missing_and_conflicting_entries_names_every_problem(
        capsys, prog, tmp_path, monkeypatch):
    from targets import tables
    for name in ("linux-generic", "linux-x86_64"):
        (tmp_path / f"{name}.toml").write_text((tables.ABI_DIR / f"{name}.toml").read_text())
    (tmp_path / "clash.toml").write_text('inherits = "linux-x86_64"\nkeystone = "x86"\n'
                                         '[syscalls]\nread = "zero"\ndup = 1\n')
    monkeypatch.setattr(tables, "ABI_DIR", tmp_path)
    tables.load.cache_clear()
    try:
        status, _, err = run(capsys, "emit", str(prog), "-o", str(tmp_path / "x"),
                             "--abi", "clash")
    finally:
        tables.load.cache_clear()
    line = one_error_line(err)
    assert status == cli.EXIT_USAGE and line.startswith(f"error: {tmp_path / 'clash.toml'}: ")
    for problem in ("keystone should be a dict, got 'x86'", "missing keystone.arch",
                    "syscalls.read should be an integer, got 'zero'",
                    "syscalls write and dup share number 1"):
        assert problem in line, line


def test_unknown_isa_and_missing_corpus(capsys, prog):
    status, _, err = run(capsys, "show", str(prog), "--isa", "mips")
    assert status == cli.EXIT_USAGE and "unknown ABI 'linux-mips'" in one_error_line(err)
    status, _, err = run(capsys, "run", "--corpus", "no/such/dir")
    assert status == cli.EXIT_USAGE and "no corpus 'no/such/dir'" in one_error_line(err)


@pytest.mark.parametrize("isa,target", [("x86_64", "x86_64-native"), ("x86_64", "x86_64-qemu-user"),
                                        ("aarch64", "aarch64-qemu-user")])
def test_emit_then_exec_runs_the_standalone_elf(capsys, prog, tmp_path, isa, target):
    runner_or_skip(target)
    elf = tmp_path / f"{isa}.elf"
    run(capsys, "emit", str(prog), "--isa", isa, "-o", str(elf))
    status, out, err = run(capsys, "exec", str(elf), "--target", target)
    assert status == cli.EXIT_OK and "problem" not in err
    assert ":R:2,2;6869:" in out  # read(r, 8) returned 2 bytes, "hi"


def test_show_prints_a_readable_listing(capsys, prog):
    status, out, _ = run(capsys, "show", str(prog), "--isa", "aarch64")
    assert status == cli.EXIT_OK
    assert "// op 1: write(w, \"hi\")" in out and "svc #0" in out and "rt_record:" in out


def test_json_report_and_predict(capsys, prog):
    runner_or_skip("x86_64-native")
    status, out, _ = run(capsys, "run", "--targets", "x86_64-native", "--corpus", str(prog), "--json")
    report = json.loads(out)
    assert status == cli.EXIT_OK
    assert report["targets"][0]["counts"] == {"agrees": 1}
    status, out, _ = run(capsys, "predict", str(prog))
    assert "p0: 2 data=b'hi'" in out


def test_divergence_gives_exit_status_1(capsys, tmp_path, monkeypatch):
    runner_or_skip("x86_64-native")
    from oracle.kernel import Kernel, Done
    real = Kernel._pipe
    monkeypatch.setattr(Kernel, "_pipe", lambda self, p, *a: Done(0, outs=(7, 8)) if real(self, p, *a) else None)
    path = tmp_path / "p.prog"
    path.write_text(GOOD)
    status, out, _ = run(capsys, "run", "--targets", "x86_64-native", "--corpus", str(path))
    assert status == cli.EXIT_DIVERGED
    assert "p0, record 0 at `r, w = pipe()`: expected 0 [7, 8], observed 0 [3, 4]" in out


def test_a_register_the_target_does_not_save_is_a_usage_error(capsys):
    status, _, err = run(capsys, "run", "--generate", "5", "--targets", "x86_64-ref",
                         "--inject-fault", "corrupt-saved-register=x19")
    assert status == cli.EXIT_USAGE
    assert "x86_64-ref (linux-x86_64) saves no such register" in one_error_line(err)


def test_ctrl_c_kills_the_batches_in_flight_and_ends_the_run(tmp_path):
    """The interrupted run does not wait for its batch (whose watchdog is 120 s away) and
    leaves none of its processes behind."""
    import os
    import signal
    import subprocess
    import sys
    import time
    runner_or_skip("x86_64-native")
    (tmp_path / "hang.prog").write_text("# waits for a signal that never comes\npause()\n")
    marker = tmp_path / "tmp"  # batches are written under TMPDIR: their command lines name it
    marker.mkdir()

    def batch_processes() -> str:
        return subprocess.run(["pgrep", "-f", str(marker)], capture_output=True,
                              text=True).stdout
    run = subprocess.Popen(
        [sys.executable, "-m", "conformance.cli", "run", "--corpus", str(tmp_path / "hang.prog"),
         "--targets", "x86_64-native", "--watchdog-ms", "120000"],
        stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=dict(os.environ, TMPDIR=str(marker)),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not batch_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert batch_processes(), "the batch never started"
        os.killpg(run.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 130 and err.strip().endswith("error: interrupted"), err
    assert not batch_processes()
