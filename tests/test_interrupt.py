"""conformance.interrupt: Ctrl-C stops target processes and drawing, then unwinds as usual."""
from __future__ import annotations

import os
import signal

import pytest

from conformance import interrupt
from conformance.supply import Supply
from targets.runners import sandbox


@pytest.fixture
def calls(monkeypatch):
    seen = []
    monkeypatch.setattr(interrupt, "stop_all", lambda: seen.append("targets") or 0)
    monkeypatch.setattr(Supply, "stop_all", classmethod(lambda cls: seen.append("supplies")))
    monkeypatch.setattr(interrupt, "resume", lambda: seen.append("resume"))
    return seen


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler (a background job may have inherited SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_targets_and_drawing_then_raises(calls, python_sigint):
    with pytest.raises(KeyboardInterrupt):
        with interrupt.stopping_on_interrupt():
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # (Python runs the handler between bytecodes)
                pass
    assert calls == ["targets", "supplies", "resume"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored(calls):
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupt.stopping_on_interrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert calls == []


def test_stopped_targets_start_no_batch_until_resumed():
    sandbox._STOPPING.set()
    try:
        with pytest.raises(sandbox.Stopped):
            with sandbox.spawned(["true"]):
                pass
    finally:
        sandbox.resume()
    with sandbox.spawned(["true"]) as proc:
        assert sandbox._LIVE == {proc}  # stop_all would kill it
        proc.communicate()
    assert proc.returncode == 0 and not sandbox._LIVE
