"""Pipe buffers: Linux's ring of pages, or a plain byte buffer (the profile's `pipe_model`).

A buffer only stores bytes and says how much of a write fits right now; blocking, EAGAIN,
SIGPIPE and wakeups are the kernel's business.
"""
from __future__ import annotations

from collections import deque

from oracle.profile import Profile


class _Page:
    """One pipe_buffer: the unread bytes and where they start in their page."""

    __slots__ = ("start", "data")

    def __init__(self, data: bytes):
        self.start = 0
        self.data = bytearray(data)


class Pipe:
    """A pipe: its buffered bytes and how many open file descriptions read and write it."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.readers = 0
        self.writers = 0
        self._pages: deque[_Page] = deque()   # linux-pages model
        self._bytes = bytearray()             # bytes model

    def __len__(self) -> int:
        if self.profile.pipe_model == "bytes":
            return len(self._bytes)
        return sum(len(page.data) for page in self._pages)

    @property
    def slots_used(self) -> int:
        """Pages in use (linux-pages model; the bytes model reports 0 or 1)."""
        if self.profile.pipe_model == "bytes":
            return int(bool(self._bytes))
        return len(self._pages)

    def writable(self) -> bool:
        """Whether a write could store something now (Linux: a free slot in the ring)."""
        if self.profile.pipe_model == "bytes":
            return len(self._bytes) < self.profile.pipe_capacity
        return len(self._pages) < self.profile.pipe_buffers

    def empty(self) -> bool:
        """Whether there is nothing to read."""
        return not (self._bytes or self._pages)

    def take(self, n: int) -> bytes:
        """Remove and return up to n bytes, oldest first, across pages."""
        if self.profile.pipe_model == "bytes":
            out = bytes(self._bytes[:n])
            del self._bytes[:n]
            return out
        out = bytearray()
        while self._pages and len(out) < n:
            page = self._pages[0]
            k = min(n - len(out), len(page.data))
            out += page.data[:k]
            del page.data[:k]
            page.start += k  # the page's fill level stays put: it bounds later merges
            if not page.data:
                self._pages.popleft()
        return bytes(out)

    def offer(self, data: bytes, done: int, fresh: bool) -> int:
        """Store what fits of data[done:] now; return the new count of bytes stored.

        `fresh` is true on a write's first attempt (Linux merges into the last page only then).
        """
        if self.profile.pipe_model == "bytes":
            return self._offer_bytes(data, done)
        page_size = self.profile.page_size
        chars = len(data) % page_size
        if fresh and chars and self._pages:
            last = self._pages[-1]
            if last.start + len(last.data) + chars <= page_size:
                last.data += data[:chars]
                done = chars
        while done < len(data) and len(self._pages) < self.profile.pipe_buffers:
            self._pages.append(_Page(data[done:done + page_size]))
            done = min(len(data), done + page_size)
        return done

    def _offer_bytes(self, data: bytes, done: int) -> int:
        free = self.profile.pipe_capacity - len(self._bytes)
        if len(data) <= self.profile.pipe_buf:
            k = len(data) if free >= len(data) else 0  # atomic: all or nothing
        else:
            k = min(free, len(data) - done)
        self._bytes += data[done:done + k]
        return done + k
