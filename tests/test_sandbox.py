"""Which programs may run without a pid namespace."""
from __future__ import annotations

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
