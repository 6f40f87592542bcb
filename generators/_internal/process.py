"""The process family: fork, wait, exit, kill and process groups.

A child only ever interacts with its parent through a pattern that fixes the order of events:
it is reaped in the same step that forks it; a signal that acts on it is sent only while it
is provably blocked inside a write on a full pipe (the parent has read the first byte), or
while it keeps the signal blocked until its sigsuspend (after announcing that over a pipe);
stops and continues hit it while its next step waits for a pipe only the parent writes.
Names of reaped children stay bound, for ESRCH/ECHILD/EPERM error paths.
"""
from __future__ import annotations

from conformance.ir import Group, Ref
from generators._internal.build import Builder, Template, flags
from generators._internal.model import IGNORE, Proc

FAMILY = "process"
BAD_WAIT_BITS = (0x100, 0x4, 0x1000000)  # unknown to waitpid/wait4 (waitid-only or unused)


def _reaped(p: Proc) -> list[str]:
    return [k.name for k in p.kids.values() if not k.live]


def ids(b: Builder, p: Proc, room: int) -> None:
    """getpid, getppid or getpgrp."""
    b.op(p, b.pick(("getpid", "getppid", "getpgrp")))


def groups(b: Builder, p: Proc, room: int) -> None:
    """getpgid and setpgid calls with fixed answers (children never move themselves, except
    in the pattern that kills a group)."""
    reaped = [Ref(n) for n in _reaped(p)]
    if b.flip():
        # ESRCH for a reaped child
        who = [Ref("self"), 0] + [Ref("parent")] * (p.parent is not None) + reaped
        b.op(p, "getpgid", b.pick(who))
        return
    if p.parent is None:
        # Process 0 leads its group already: these are no-ops that return 0.
        forms = [(0, 0), (Ref("self"), 0), (0, Ref("self"))]
        forms += [(0, c) for c in reaped]   # EPERM: no such group
    else:
        forms = [(Ref("parent"), 0)]        # ESRCH: neither the caller nor its child
    forms += [(c, 0) for c in reaped]       # ESRCH
    b.op(p, "setpgid", *b.pick(forms))


def echild(b: Builder, p: Proc, room: int) -> None:
    """waitpid/wait4 with nothing to wait for (ECHILD) or unknown flag bits (EINVAL)."""
    call = b.pick(("waitpid", "wait4"))
    targets: list = [-1, Ref("self")] + [Ref(n) for n in _reaped(p)]
    if p.parent is not None:
        targets.append(Ref("parent"))
    target = b.pick(targets)
    bits = b.pick((0,) + BAD_WAIT_BITS)
    fl = flags(call, b.subset(("WNOHANG", "WUNTRACED", "WCONTINUED")), bits)
    b.op(p, call, target, fl)


def kill_errors(b: Builder, p: Proc, room: int) -> None:
    """kill with an invalid signal (EINVAL), kill(self, 0), or at a reaped child (ESRCH)."""
    reaped = _reaped(p)
    if reaped and b.flip():
        # Linux looks the target up before checking the signal: ESRCH whatever the signal.
        b.op(p, "kill", Ref(b.pick(reaped)), b.pick((0, "SIGTERM", "SIGKILL", 65, -1)))
    else:
        b.op(p, "kill", Ref("self"), b.pick((0, 65, -1)))


def kill_parent(b: Builder, p: Proc, room: int) -> None:
    """A child signals its parent harmlessly: an existence check, or a signal the parent
    discards (it is alive: it waits for this child)."""
    b.op(p, "kill", Ref("parent"), b.pick([0] + sorted(p.ctx.parent_ignores)))


def fork_wait(b: Builder, p: Proc, room: int) -> None:
    """c = fork { free steps; end }; inert calls; waitpid(c)."""
    ctx = b.child_ctx(p)
    name, child = b.fork(p, ctx)
    b.child_body(child, room - 2)
    b.child_end(child, reserve=1)
    b.forked(p, name, child)
    b.inert(p, b.room - 1)
    b.wait(p, name, child)
    if b.room > 0 and b.flip(1, 4):
        b.op(p, b.pick(("waitpid", "wait4")), Ref(name))  # ECHILD: reaped already


def kill_blocked(b: Builder, p: Proc, room: int) -> None:
    """The child fills a pipe and blocks in write(w, 70000); the parent reads its first byte
    (so the child is inside the write) and kills it, maybe stopping it first, maybe through
    the group the child made itself the leader of."""
    r, w = b.pipe(p)
    pipe = p.end(r).pipe
    # The signal must kill the child wherever its free steps leave it: reserve it.
    candidates = b.fatal_for(p, ("SIGKILL", "SIGTERM", "SIGUSR1", "SIGINT", "SIGHUP", 33))
    sig = b.pick(candidates)
    stop = b.room >= 8 and b.flip(1, 3)
    group = b.room >= 6 + 3 * stop and b.flip(1, 4)
    mandatory = 4 + 3 * stop + group  # write, read, kill, wait (+ stop, cont, + setpgid)
    ctx = b.child_ctx(p, pipes=[pipe], signals=[sig], may_fork=not group)
    name, child = b.fork(p, ctx)
    if group:
        # The child moves itself (a parent's setpgid would race with its own getpgrp).
        b.op(child, "setpgid", *b.pick(((0, 0), (Ref("self"), 0), (0, Ref("self")))))
    b.child_body(child, b.room - mandatory + group)
    b.op(child, "write", Ref(w), 70000)
    pipe.offer(70000)
    b.forked(p, name, child)
    b.op(p, "read", Ref(r), 1)
    pipe.take(1)
    if stop:
        b.op(p, "kill", Ref(name), "SIGSTOP")
        b.op(p, "waitpid", Ref(name), flags("waitpid", ("WUNTRACED",)))
    target = Group(name) if group else Ref(name)
    b.op(p, "kill", target, sig)
    if stop and sig != "SIGKILL":
        b.op(p, "kill", Ref(name), "SIGCONT")  # only SIGKILL acts on a stopped process
    b.wait(p, name, child, flags_from=())


def stop_continue(b: Builder, p: Proc, room: int) -> None:
    """The child waits in read(go_r, 1); the parent stops it, sees the stop, continues it,
    sees the continue, then lets it go and reaps it."""
    go_r, go_w = b.pipe(p)
    pipe = p.end(go_r).pipe
    stop_sig = b.pick(["SIGSTOP"] + [s for s in ("SIGTSTP",)
                                     if s not in p.blocked and p.effect(s) == "stop"])
    ctx = b.child_ctx(p, pipes=[pipe], signals=[stop_sig], may_block=False, may_fork=False)
    name, child = b.fork(p, ctx)
    nohang = b.room >= 8 and b.flip(1, 3)
    cont_nohang = b.flip(1, 3)
    mandatory = 7 + nohang  # the child's read, then 6 (+1) parent ops
    b.child_body(child, b.room - mandatory)
    b.op(child, "read", Ref(go_r), 1)
    b.child_body(child, b.room - mandatory + 1)
    b.child_end(child, reserve=mandatory - 1)
    b.forked(p, name, child)
    c = Ref(name)
    b.op(p, "kill", c, stop_sig)
    if nohang:  # stops are only reported with WUNTRACED
        b.op(p, "waitpid", c, flags("waitpid", ("WNOHANG",)))
    b.op(p, b.pick(("waitpid", "wait4")), c, flags("waitpid", ("WUNTRACED",)))
    b.op(p, "kill", c, "SIGCONT")
    if cont_nohang:  # Linux records the continue inside kill(SIGCONT)
        b.op(p, "waitpid", c, flags("waitpid", ("WCONTINUED", "WNOHANG")))
    else:
        b.op(p, "waitpid", c, flags("waitpid", ("WCONTINUED",)))
    b.op(p, "write", Ref(go_w), b"g")
    b.wait(p, name, child, flags_from=())


def wnohang(b: Builder, p: Proc, room: int) -> None:
    """WNOHANG while the child waits for "go" gives 0; so do signals it ignores."""
    go_r, go_w = b.pipe(p)
    pipe = p.end(go_r).pipe
    harmless = [0] + [s for s in ("SIGURG", "SIGWINCH", "SIGCHLD")
                      if s not in p.blocked and p.effect(s) == IGNORE]
    sig = b.pick(harmless)
    ctx = b.child_ctx(p, pipes=[pipe], signals=[sig] if sig else [])
    name, child = b.fork(p, ctx)
    b.child_body(child, b.room - 5)
    b.op(child, "read", Ref(go_r), 1)
    b.child_end(child, reserve=3)
    b.forked(p, name, child)
    c = Ref(name)
    call = b.pick(("waitpid", "wait4"))
    b.op(p, call, c, flags(call, ["WNOHANG"] + b.subset(("WUNTRACED", "WCONTINUED"))))
    if b.room >= 3 and b.flip(1, 3):
        b.op(p, "kill", c, sig)  # 0: discarded (or an existence check)
    b.op(p, "write", Ref(go_w), b"g")
    b.wait(p, name, child)


def ending(b: Builder, p: Proc, room: int) -> None:
    """Process 0's last op: exit(code), or a signal it sends itself that kills it."""
    fatal = b.fatal_for(p, ("SIGTERM", "SIGUSR1", "SIGKILL", "SIGQUIT"))
    if fatal and b.flip(1, 3):
        b.op(p, "kill", Ref("self"), b.pick(fatal))
    else:
        b.op(p, "exit", b.num(0, 255))
    p.done = True


TEMPLATES = (
    Template("ids", FAMILY, ids, weight=3),
    Template("groups", FAMILY, groups, weight=3),
    Template("echild", FAMILY, echild, weight=2, when=lambda b, p: not p.live_kids()),
    Template("kill-errors", FAMILY, kill_errors),
    Template("kill-parent", FAMILY, kill_parent, when=lambda b, p: p.parent is not None),
    Template("fork-wait", FAMILY, fork_wait, min_ops=2, forks=1, weight=4),
    Template("kill-blocked", FAMILY, kill_blocked, min_ops=6, forks=1, weight=3),
    Template("stop-continue", FAMILY, stop_continue, min_ops=9, forks=1, weight=2),
    Template("wnohang", FAMILY, wnohang, min_ops=6, forks=1, weight=2),
    Template("ending", FAMILY, ending, when=lambda b, p: p.parent is None and b.room <= 2,
             weight=1),
)
