"""Which programs may run without a pid namespace."""
from __future__ import annotations

import pytest

from targets.runners.sandbox import unsafe_without_namespace


def test_signalling_a_live_child_is_safe(parse):
    assert unsafe_without_namespace(parse("c = fork {\n}\nkill(c, SIGTERM)\nwaitpid(c)\n")) is None
    assert unsafe_without_namespace(parse("kill(self, 0)\n")) is None


def test_signalling_after_a_wait_or_the_parent_is_refused(parse):
    after_wait = parse("c = fork {\n}\nwaitpid(c)\nkill(c, 0)\n")
    assert "after a wait" in unsafe_without_namespace(after_wait)
    to_parent = parse("c = fork {\n    kill(parent, SIGUSR1)\n}\n")
    assert "parent" in unsafe_without_namespace(to_parent)


def test_group_targets_follow_the_same_rule(parse):
    assert unsafe_without_namespace(parse("c = fork {\n}\nkill(-c, 0)\nkill(0, 0)\n")) is None
    assert "after a wait" in unsafe_without_namespace(parse("c = fork {\n}\nwaitpid(c)\nkill(-c, 0)\n"))


def test_a_batch_is_written_and_started_only_while_no_other_process_is_being_started():
    # A child forked while a batch ELF is open for writing would make its exec fail with
    # ETXTBSY: the writer and every process start take turns on one lock.
    import threading
    from conformance.batch import build
    from conformance.cli import load_corpus
    from e2e import runner_or_skip
    from targets.runners.sandbox import SPAWN_LOCK
    runner = runner_or_skip("x86_64-native")
    elf = build(load_corpus("basic")[:1], runner.abi).elf
    results = []
    with SPAWN_LOCK:  # another thread is starting a process
        worker = threading.Thread(target=lambda: results.append(runner.run(elf, 10)))
        worker.start()
        worker.join(0.5)
        assert worker.is_alive() and not results
    worker.join(10)
    assert results and results[0].returncode == 0


# A target's processes must not outlive the run that watches them: its watchdog dies with it.
_ORPHAN_SCRIPT = """
import os, sys
from targets.runners import sandbox, vm
marker = os.environ["ORPHAN_MARKER"]  # not in this process's own command line
if sys.argv[1] == "sandbox":
    sandbox.run(["/bin/sh", "-c", f"sleep 60; : {marker}", "sh"], b"", 90)
else:
    config = vm.shipped_configs()[0]  # its deadlines only: the command is ours
    vm._boot(["/bin/sh", "-c", f"sleep 60; : {marker}"], 90, config)
"""


@pytest.mark.parametrize("runner", ["sandbox", "vm"])
def test_a_killed_run_leaves_none_of_its_processes_behind(runner, tmp_path):
    import os
    import subprocess
    import sys
    import time
    import uuid
    marker = f"conformance-orphan-{uuid.uuid4().hex}"
    run = subprocess.Popen([sys.executable, "-c", _ORPHAN_SCRIPT, runner],
                           env=dict(os.environ, ORPHAN_MARKER=marker))

    def survivors() -> str:
        return subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout

    deadline = time.monotonic() + 30
    while not survivors() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert survivors(), "the run never started its process"
    run.kill()  # no cleanup code of the run's gets to run
    run.wait()
    deadline = time.monotonic() + 5
    while survivors() and time.monotonic() < deadline:
        time.sleep(0.05)
    left = survivors()
    if left:
        subprocess.run(["pkill", "-9", "-f", marker])
    assert not left, f"processes outlived the run: {left}"


def test_without_prlimit_native_and_qemu_user_say_so(monkeypatch):
    from targets.runners import get, sandbox
    monkeypatch.setattr(sandbox, "_system_tool", lambda name: None)
    for name in ("x86_64-native", "aarch64-qemu-user"):
        why = get(name).unavailable()
        if name == "x86_64-native" and why and "the host is" in why:
            continue  # another ISA's host: that reason comes first
        if name == "aarch64-qemu-user" and why and "not on PATH" in why:
            continue
        assert why and "prlimit is not installed" in why and "util-linux" in why, (name, why)


def test_a_batch_runs_with_its_rlimits():
    from targets.runners import sandbox
    result = sandbox.run(["/bin/sh", "-c", "ulimit -n; ulimit -v; ulimit -c; ulimit -t", "sh"],
                         b"", 10)
    assert result.output.decode().split() == ["1024", str(2 * 1024 * 1024), "0", "11"]
