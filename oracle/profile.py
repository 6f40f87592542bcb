"""Implementation-defined choices of the POSIX model, as named knobs of a profile.

POSIX leaves some behaviour to the implementation (pipe capacity, whether a core file was
written, ...). The oracle never assumes one silently: each such choice is a field here.
`LINUX` picks what Linux 6.x does; `POSIX` keeps POSIX's own minimums where it names them.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from conformance.ir import SIGNAL_NAMES

PIPE_MODELS = ("linux-pages", "bytes")

# Linux takes the synchronous (fault) signals first, then the others by number; SIGNAL_NAMES
# is in Linux's numbering, which x86-64, aarch64 and riscv64 share.
_SYNCHRONOUS = ("SIGILL", "SIGTRAP", "SIGBUS", "SIGFPE", "SIGSEGV", "SIGSYS")
LINUX_SIGNAL_ORDER = _SYNCHRONOUS + tuple(s for s in SIGNAL_NAMES if s not in _SYNCHRONOUS)


@dataclass(frozen=True, kw_only=True)
class Profile:
    """A set of implementation-defined choices; every field is one named knob."""

    name: str
    """Short name, as the CLI and reports spell it."""

    pipe_model: str = "linux-pages"
    """How a pipe buffers data. "linux-pages": a ring of `pipe_buffers` pages of `page_size`
    bytes, where a write merges its first `n % page_size` bytes into the last page if they fit
    and puts the rest in fresh pages (Linux fs/pipe.c). "bytes": a plain `pipe_capacity`-byte
    buffer, writes of at most `pipe_buf` bytes atomic."""

    page_size: int = 4096
    """Bytes per pipe page (linux-pages model)."""

    pipe_buffers: int = 16
    """Pages in a pipe's ring (linux-pages model); Linux's default is 16."""

    pipe_capacity: int = 65536
    """Bytes a pipe holds (bytes model); for linux-pages it must equal pipe_buffers*page_size."""

    pipe_buf: int = 4096
    """PIPE_BUF: writes up to this size never interleave (bytes model: need all the space)."""

    open_max: int = 1024
    """RLIMIT_NOFILE: fds are 0..open_max-1; dup2 to a newfd >= open_max is EBADF."""

    core_flag: bool | None = None
    """The core-dump bit of a wait status for core-action signals; None allows either value.
    Linux sets None too: the host's core_pattern and RLIMIT_CORE decide."""

    max_signal: int = 64
    """Highest valid signal number; 32..max_signal are realtime signals (default action term)."""

    signal_order: tuple[str, ...] = LINUX_SIGNAL_ORDER
    """The order in which a process takes its pending standard signals (realtime ones follow,
    lowest number first). POSIX leaves it unspecified; both profiles use Linux's."""

    max_schedules: int = 24
    """Cap on the priority schedules the predictor explores (identity and reverse always)."""

    def __post_init__(self) -> None:
        if self.pipe_model not in PIPE_MODELS:
            raise ValueError(f"Profile.pipe_model={self.pipe_model!r}: expected one of "
                             f"{', '.join(PIPE_MODELS)}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and value < 1:
                raise ValueError(f"Profile.{f.name}={value!r}: must be a positive integer")
        if self.pipe_model == "linux-pages" and \
                self.pipe_capacity != self.pipe_buffers * self.page_size:
            raise ValueError(f"Profile.pipe_capacity={self.pipe_capacity}: the linux-pages model "
                             f"holds pipe_buffers*page_size = {self.pipe_buffers * self.page_size}")
        if self.max_signal < 32:
            raise ValueError(f"Profile.max_signal={self.max_signal}: realtime signals start at 32")
        if self.max_schedules < 2:
            raise ValueError(f"Profile.max_schedules={self.max_schedules}: need at least 2 "
                             "(identity and reverse order)")


LINUX = Profile(name="linux")
# POSIX names only minimums: _POSIX_PIPE_BUF is 512; capacity and page merging are unspecified,
# so the bytes model stands for "any buffer at least this big".
POSIX = Profile(name="posix", pipe_model="bytes", pipe_buf=512)
PROFILES: dict[str, Profile] = {p.name: p for p in (LINUX, POSIX)}
