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
