"""Where generated programs may run on this host, and under which limits.

Programs send signals. On a host they run in a fresh user + pid namespace (`unshare`), where
the batch is pid 1 and no signal can leave. Where the host refuses namespaces, only programs
whose every signal provably targets one of their own live processes are allowed
(`unsafe_without_namespace`). Every run has rlimits and an outer watchdog, and its processes
die with the run that watches them.
"""
from __future__ import annotations

import contextlib
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
# A batch's rlimits, by prlimit's name (RLIMIT_<NAME>). The oracle's `open_max` knob assumes
# this nofile.
LIMITS = {
    "nofile": 1024,
    "nproc": 256,
    "as": 2 << 30,
    "core": 0,       # SIGQUIT tests must not write core files
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


def limits(cpu_seconds: int) -> list[str]:
    """`prlimit` options for a batch: LIMITS (no higher than the hard limits this process
    has) and `cpu_seconds` of CPU time."""
    out = []
    for name, value in LIMITS.items():
        hard = resource.getrlimit(getattr(resource, f"RLIMIT_{name.upper()}"))[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        out.append(f"--{name}={value}:{value}")
    return out + [f"--cpu={cpu_seconds}:{cpu_seconds + 5}"]


@cache  # looked up for every batch otherwise
def _system_tool(name: str) -> str | None:
    """A util-linux command: on PATH, else where the system keeps it."""
    return shutil.which(name) or shutil.which(name, path=os.defpath)


def limits_unavailable() -> str | None:
    """None if batches can get their rlimits here, else why not (and the fix)."""
    if _system_tool("prlimit") is None:
        return "prlimit is not installed, so batches could not get their rlimits " \
               "(apt-get install util-linux)"
    return None


def _dying_with_parent() -> list[str]:
    """The command prefix that SIGKILLs a target process when the thread that started it dies
    (a run killed outright, with no cleanup of its own, takes its batches with it; unshare's
    --kill-child and pid 1 of the namespace pass the kill on to the whole batch)."""
    setpriv = _system_tool("setpriv")  # (without it, only Ctrl-C and the watchdogs stop them)
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


# Batches start from many threads. A child forked while another thread has a batch ELF open
# for writing holds that descriptor until it execs, and exec'ing the ELF meanwhile fails with
# ETXTBSY ("Text file busy"). Writing an executable and starting a process (Popen returns once
# the child has exec'd) therefore take turns.
SPAWN_LOCK = threading.Lock()
_LIVE: set[subprocess.Popen] = set()  # every target process started and not yet released
_STOPPING = threading.Event()


class Stopped(RuntimeError):
    """The run is being stopped (stop_all): no more target processes start."""


@contextlib.contextmanager
def spawned(argv: list[str], **popen_args):
    """A target process started in a session of its own, dying with its starter, and known
    to stop_all while the block runs. It starts under SPAWN_LOCK.

    No Python code runs in the child (no preexec_fn): a child forked from a threaded process
    may find a lock taken for good, and a Ctrl-C that reached it before it left our session
    ran the SIGINT handler there and hung the run. Limits and the death signal are commands
    (prlimit, setpriv) that exec the next."""
    with SPAWN_LOCK:
        if _STOPPING.is_set():
            raise Stopped("the run is stopping: no more batches start")
        proc = subprocess.Popen(_dying_with_parent() + argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, **popen_args)
    _LIVE.add(proc)
    try:
        if _STOPPING.is_set():  # stop_all ran while it started, and may have missed it
            _kill(proc)
        yield proc
    finally:
        _LIVE.discard(proc)


def stop_all() -> int:
    """SIGKILL every live target process's session and start no more (an interrupted run
    ends now, not when its batches would); how many were killed. Takes no lock: it runs in a
    signal handler, maybe while its own thread holds SPAWN_LOCK."""
    _STOPPING.set()
    live = list(_LIVE)
    for proc in live:
        _kill(proc)
    return len(live)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def resume() -> None:
    """After stop_all, once its run has unwound: batches may start again in this process."""
    _STOPPING.clear()


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
        full = [_system_tool("prlimit") or "prlimit"] + limits(int(timeout) + 1) + ["--"] \
            + prefix + argv + [path]
        start = time.monotonic()
        with spawned(full, cwd=tmp) as proc:
            try:
                out, err = proc.communicate(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, err = proc.communicate()
                timed_out = True
        return RunResult(out, err.decode(errors="replace"), proc.returncode, timed_out,
                         time.monotonic() - start, sandboxed)
