"""The generator's own model of a program while it is being built.

It answers the questions steering needs, conservatively: which fds are live and what pipe they
reach, whether a read or write would block, what a signal would do to a process if it arrived
now (run a handler, be ignored, kill, stop), which children are alive. It predicts no records:
that is the oracle's job. It is deliberately separate from `oracle/`, so that a bug in the
oracle cannot hide the programs that would expose it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from conformance.ir import SIGNAL_NAMES

PAGE, SLOTS = 4096, 16  # Linux's pipe ring: 16 page slots (fs/pipe.c), modelled exactly

# Default actions of the signals the generator uses (realtime signals terminate).
TERM, CORE, IGNORE, STOP, CONT = "term", "core", "ignore", "stop", "cont"
_DEFAULTS = dict.fromkeys(
    ("SIGHUP", "SIGINT", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM",
     "SIGVTALRM", "SIGPROF"), TERM)
_DEFAULTS.update(dict.fromkeys(("SIGQUIT",), CORE))
_DEFAULTS.update(dict.fromkeys(("SIGCHLD", "SIGURG", "SIGWINCH"), IGNORE))
_DEFAULTS.update(dict.fromkeys(("SIGSTOP", "SIGTSTP"), STOP))
_DEFAULTS["SIGCONT"] = CONT
UNBLOCKABLE = frozenset({"SIGKILL", "SIGSTOP"})

# Signals free steps may install, block and raise. SIGCHLD and SIGCONT are left to the
# patterns that need them: a SIGCHLD or SIGCONT handler would run at a point that depends on
# another process's progress.
GENERIC_SIGNALS: tuple = ("SIGUSR1", "SIGUSR2", "SIGTERM", "SIGHUP", "SIGINT", "SIGQUIT",
                          "SIGURG", "SIGWINCH", "SIGPIPE", "SIGALRM", "SIGVTALRM", "SIGPROF",
                          33, 34, 40)
# Realtime 63 and 64 are left out: qemu-user cannot represent them (a documented finding).

HANDLER, IGN, DFL = "handler", "SIG_IGN", "SIG_DFL"


def default_action(sig) -> str:
    """term, core, ignore, stop or cont."""
    return TERM if isinstance(sig, int) else _DEFAULTS[sig]


def canonical(sigs) -> tuple:
    """A signal set in the IR's canonical order (standard by number, then realtime)."""
    names = sorted((s for s in set(sigs) if isinstance(s, str)), key=SIGNAL_NAMES.index)
    return tuple(names) + tuple(sorted(s for s in set(sigs) if isinstance(s, int)))


class Pipe:
    """A pipe's buffer as Linux's ring of pages: [start, length] per page slot."""

    def __init__(self) -> None:
        self.pages: list[list[int]] = []

    @property
    def data(self) -> int:
        """Bytes buffered."""
        return sum(length for _, length in self.pages)

    @property
    def full(self) -> bool:
        """No free slot: POLLOUT is not reported and any write blocks (or EAGAIN)."""
        return len(self.pages) >= SLOTS

    def offer(self, n: int) -> int:
        """Store what fits of a fresh n-byte write now (Linux's pipe_write); the count stored."""
        done, chars = 0, n % PAGE
        if chars and self.pages:
            start, length = self.pages[-1]
            if start + length + chars <= PAGE:
                self.pages[-1][1] += chars
                done = chars
        while done < n and len(self.pages) < SLOTS:
            chunk = min(PAGE, n - done)
            self.pages.append([0, chunk])
            done += chunk
        return done

    def fits(self, n: int) -> bool:
        """Whether a blocking write of n bytes completes without waiting for a reader."""
        trial = Pipe()
        trial.pages = [list(p) for p in self.pages]
        return trial.offer(n) == n

    def take(self, n: int) -> int:
        """Read up to n bytes; the count read."""
        got = 0
        while self.pages and got < n:
            page = self.pages[0]
            k = min(n - got, page[1])
            page[0] += k
            page[1] -= k
            got += k
            if not page[1]:
                self.pages.pop(0)
        return got


@dataclass(eq=False)
class End:
    """An open file description: one end of a pipe (shared by dup and fork)."""

    pipe: Pipe
    kind: str          # "r" or "w"
    nonblock: bool


@dataclass(frozen=True)
class Action:
    """A disposition: handler / SIG_IGN / SIG_DFL, with its SA_* flag names."""

    handler: str = DFL
    flags: frozenset = frozenset()


@dataclass(frozen=True)
class Ctx:
    """What a process may do while its parent runs a pattern with it (p0: anything).

    Reserved pipes and signals belong to the pattern; `may_block` allows calls that sleep
    until a timer (the pattern must not depend on the child's timing); `parent_ignores` are
    signals the parent discards whenever they come (safe to send it)."""

    reserved_pipes: frozenset = frozenset()
    reserved_signals: frozenset = frozenset()
    may_block: bool = True
    may_fork: bool = True
    parent_ignores: frozenset = frozenset()


@dataclass(eq=False)
class Kid:
    """A child name and whether that child still lives (or, in a grandchild, a name it
    inherited: a process that is long gone)."""

    name: str
    live: bool


@dataclass(eq=False)
class Proc:
    """One process of the program: its body so far and its state at the end of it."""

    parent: "Proc | None" = None
    body: list = field(default_factory=list)
    fds: dict = field(default_factory=dict)          # fd number -> End
    names: dict = field(default_factory=dict)        # fd handle -> fd number (-1: failed)
    kids: dict = field(default_factory=dict)         # child name -> Kid
    actions: dict = field(default_factory=dict)      # signal -> Action (default ones absent)
    blocked: frozenset = frozenset()
    pending: Counter = field(default_factory=Counter)  # blocked, pending signals
    altstack: object = None                          # None (disabled) or the size operand
    ctx: Ctx = Ctx()
    done: bool = False                               # exited or killed: nothing more runs

    # -- fds -----------------------------------------------------------------------------

    def lowest_free(self, skip: int | None = None) -> int:
        fd = 3
        while fd in self.fds or fd == skip:
            fd += 1
        return fd

    def end(self, name) -> End | None:
        """The open file a handle (or literal fd) names now, or None."""
        fd = self.names.get(name, -1) if isinstance(name, str) else name
        return self.fds.get(fd)

    def handles(self, kind: str | None = None) -> list[str]:
        """Bound handles naming an open fd (of that kind), outside reserved pipes."""
        out = []
        for name, fd in self.names.items():
            e = self.fds.get(fd)
            if e is None or (kind and e.kind != kind) or e.pipe in self.ctx.reserved_pipes:
                continue
            out.append(name)
        return sorted(out, key=_natural)

    def dead_handles(self) -> list[str]:
        """Bound handles whose fd is closed (or never opened): EBADF material."""
        return sorted((n for n, fd in self.names.items() if fd not in self.fds), key=_natural)

    # -- signals -------------------------------------------------------------------------

    def effect(self, sig) -> str:
        """What delivering `sig` now does: handler, ignore, term, core, stop."""
        if sig in UNBLOCKABLE:
            return TERM if sig == "SIGKILL" else STOP
        action = self.actions.get(sig, Action())
        if action.handler == HANDLER:
            return HANDLER
        if action.handler == IGN:
            return IGNORE
        default = default_action(sig)
        return IGNORE if default == CONT else default

    def pending_signals(self) -> set:
        return {s for s, n in self.pending.items() if n}

    def send(self, sig) -> str:
        """A signal arrives (kill); returns "pending", handler, ignore, term, core or stop."""
        if sig == 0:
            return IGNORE
        if sig in self.blocked:
            if isinstance(sig, str) and self.pending[sig]:
                return "pending"  # standard signals do not queue
            self.pending[sig] += 1
            return "pending"
        return self._deliver(sig)

    def _deliver(self, sig) -> str:
        effect = self.effect(sig)
        if effect == HANDLER:
            action = self.actions[sig]
            if "SA_RESETHAND" in action.flags:
                self.actions[sig] = Action(DFL, action.flags)
        elif effect in (TERM, CORE, STOP):
            self.done = True
        return effect

    def set_mask(self, new_mask) -> str:
        """Install a mask, delivering the pending signals it unblocks; the worst effect."""
        self.blocked = frozenset(new_mask) - UNBLOCKABLE
        worst = "none"
        for sig in canonical(self.pending_signals() - self.blocked):
            for _ in range(self.pending.pop(sig)):
                effect = self._deliver(sig)
                worst = _worse(worst, effect)
        return worst

    def set_action(self, sig, action: Action) -> None:
        if action == Action():
            self.actions.pop(sig, None)
        else:
            self.actions[sig] = action
        if self.effect(sig) == IGNORE and sig not in UNBLOCKABLE:
            self.pending.pop(sig, None)  # an ignored signal's pending instance is discarded

    def fatal_pending(self) -> set:
        """Pending signals whose delivery would end (or stop) the process."""
        return {s for s in self.pending_signals() if self.effect(s) in (TERM, CORE, STOP)}

    # -- processes -----------------------------------------------------------------------

    def live_kids(self) -> list[str]:
        return [k.name for k in self.kids.values() if k.live]

    def forked(self, ctx: Ctx) -> "Proc":
        """The child's model right after fork: fds, names, dispositions, mask, alt stack."""
        child = Proc(parent=self, fds=dict(self.fds), names=dict(self.names),
                     actions=dict(self.actions), blocked=self.blocked,
                     altstack=self.altstack, ctx=ctx)
        # Names of earlier (reaped) children stay visible: to the child they name no child.
        child.kids = {n: replace(k, live=False) for n, k in self.kids.items()}
        return child


def _worse(a: str, b: str) -> str:
    rank = {"none": 0, IGNORE: 0, "pending": 0, HANDLER: 1, STOP: 2, TERM: 3, CORE: 3}
    return b if rank[b] > rank[a] else a


def _natural(name: str):
    digits = "".join(ch for ch in name if ch.isdigit())
    return (int(digits) if digits else 0, name)
