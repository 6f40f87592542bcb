"""Where generated programs may run on this host, and under which limits.

Programs send signals. On a host they run in a fresh user + pid namespace (`unshare`), where
the batch is pid 1 and no signal can leave. Where the host refuses namespaces, only programs
whose every signal provably targets one of their own live processes are allowed
(`unsafe_without_namespace`). Every run has rlimits and an outer watchdog, and its processes
die with the run that watches them.
"""
from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import cache

from conformance.ir import PARENT, SELF, Group, Op, Program, Ref

UNSHARE_FLAGS = ["--user", "--pid", "--fork", "--map-root-user", "--kill-child", "--"]
# The oracle's `open_max` knob assumes this RLIMIT_NOFILE.
LIMITS = {
    resource.RLIMIT_NOFILE: 1024,
    resource.RLIMIT_NPROC: 256,
    resource.RLIMIT_AS: 2 << 30,
    resource.RLIMIT_CORE: 0,       # SIGQUIT tests must not write core files
}


@dataclass(frozen=True)
class RunResult:
    """What one batch execution produced."""

    output: bytes
    stderr: str
    returncode: int | None
    timed_out: bool
    seconds: float
    sandboxed: bool
    boot_seconds: float | None = None  # VMs: from start to the first record
    incident: str = ""                 # what ended the run abnormally (VMs: panic, stall)


def namespace_unavailable() -> str | None:
    """None if user+pid namespaces work here, else why not."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return "unshare (util-linux) is not on PATH"
    return _probe(unshare)


@cache
def _probe(unshare: str) -> str | None:
    try:
        proc = subprocess.run([unshare] + UNSHARE_FLAGS + ["true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    if proc.returncode != 0:
        return f"the host refuses user+pid namespaces: {proc.stderr.decode(errors='replace').strip()}"
    return None


def unsafe_without_namespace(program: Program) -> str | None:
    """Why a program could signal a process outside itself without a namespace, or None.

    A child's pid is safe to signal until its parent waits (only that parent can reap it
    while alive); `parent` may already be reaped and its pid reused by a host process.
    """
    def visit(body: tuple[Op, ...]) -> str | None:
        waited = False
        for op in body:
            if op.call in ("waitpid", "wait4"):
                waited = True
            if op.call == "kill":
                target = op.args[0]
                name = target.name if isinstance(target, (Ref, Group)) else None
                if name == PARENT:
                    return "it signals `parent`, whose pid may belong to another process by then"
                if name is not None and name != SELF and waited:
                    return (f"it signals {name!r} after a wait, when its pid may belong to "
                            "another process")
            if op.body is not None:
                reason = visit(op.body)
                if reason:
                    return reason
        return None

    return visit(program.body)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # loaded before any fork


def die_with_parent() -> None:
    """In a child before exec: SIGKILL it when the thread that started it dies, so that a run
    killed outright (no cleanup of its own) takes its watchdog's charges with it. unshare's
    --kill-child and pid 1 of the namespace pass the kill on to the whole batch."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _limit(cpu_seconds: int):
    def apply() -> None:
        for which, value in LIMITS.items():
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    return apply


# Batches start from many threads. A child forked while another thread has a batch ELF open
# for writing holds that descriptor until it execs, and exec'ing the ELF meanwhile fails with
# ETXTBSY ("Text file busy"). Writing an executable and starting a process (Popen returns once
# the child has exec'd) therefore take turns.
SPAWN_LOCK = threading.Lock()
_LIVE: set[subprocess.Popen] = set()  # every target process started and not yet released
_STOPPING = threading.Event()


class Stopped(RuntimeError):
    """The run is being stopped (stop_all): no more target processes start."""


def spawn(argv: list[str], before_exec=None, **popen_args) -> subprocess.Popen:
    """Start a target process in a session of its own, dying with its starter, known to
    stop_all until `release`d; call with SPAWN_LOCK held."""
    if _STOPPING.is_set():
        raise Stopped("the run is stopping: no more batches start")

    def child() -> None:
        die_with_parent()
        if before_exec:
            before_exec()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, preexec_fn=child,
                            **popen_args)
    _LIVE.add(proc)
    return proc


def release(proc: subprocess.Popen) -> None:
    """The process has ended (or is being waited for by its starter alone)."""
    with SPAWN_LOCK:
        _LIVE.discard(proc)


def stop_all() -> int:
    """SIGKILL every live target process's session and start no more (an interrupted run
    ends now, not when its batches would); how many were killed."""
    with SPAWN_LOCK:
        _STOPPING.set()
        live = list(_LIVE)
    for proc in live:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return len(live)


def run(argv: list[str], elf: bytes, timeout: float) -> RunResult:
    """Run `argv + [elf file]` sandboxed (namespace when possible) with limits and a watchdog."""
    sandboxed = namespace_unavailable() is None
    prefix = [shutil.which("unshare") or "unshare"] + UNSHARE_FLAGS if sandboxed else []
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        path = os.path.join(tmp, "batch.elf")
        with SPAWN_LOCK:
            with open(path, "wb") as fh:
                fh.write(elf)
        os.chmod(path, 0o755)
        full = prefix + argv + [path]
        start = time.monotonic()
        with SPAWN_LOCK:
            proc = spawn(full, _limit(int(timeout) + 1), cwd=tmp)
        try:
            out, err = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            timed_out = True
        finally:
            release(proc)
        return RunResult(out, err.decode(errors="replace"), proc.returncode, timed_out,
                         time.monotonic() - start, sandboxed)
