"""Ctrl-C ends a run at once: the batches in flight are killed and the programs not yet drawn
are dropped, so that the threads waiting on either return now, not when their batches would
have ended (a qemu-user run waited over a minute)."""
from __future__ import annotations

import contextlib
import signal
import threading

from conformance.supply import Supply
from targets.runners.sandbox import resume, stop_all


def _interrupted(signum, frame):
    stop_all()
    Supply.stop_all()
    raise KeyboardInterrupt


@contextlib.contextmanager
def stopping_on_interrupt():
    """Within: SIGINT kills every target process and drops undrawn shards, then raises
    KeyboardInterrupt as usual. Only where SIGINT has Python's default handler (not where it
    is ignored, or someone else's) and in the main thread; afterwards, batches may start again."""
    previous = signal.getsignal(signal.SIGINT)
    ours = previous is signal.default_int_handler \
        and threading.current_thread() is threading.main_thread()
    if ours:
        signal.signal(signal.SIGINT, _interrupted)
    try:
        yield
    finally:
        if ours:
            signal.signal(signal.SIGINT, previous)
            resume()
