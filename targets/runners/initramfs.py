"""A Linux initramfs: a newc cpio archive (Documentation/driver-api/early-userspace) by hand.

The archive holds `/dev/console` (so the kernel can give /init its stdin/stdout/stderr: the
serial console the results are read from) and the batch ELF as `/init`. Uncompressed: every
Linux kernel with initramfs support reads it, and the ELF is small.
"""
from __future__ import annotations

from dataclasses import dataclass

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
S_IFMT, S_IFDIR, S_IFREG, S_IFCHR = 0o170000, 0o040000, 0o100000, 0o020000
CONSOLE = (5, 1)  # the character device /dev/console


@dataclass(frozen=True)
class Entry:
    """One archive member: a path without leading slash, its mode (type bits included)."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def _pad(out: bytearray) -> None:
    out += bytes(-len(out) % 4)


def newc(entries: list[Entry]) -> bytes:
    """The entries as a newc cpio archive, terminated by the trailer."""
    out = bytearray()
    for ino, entry in enumerate(entries + [Entry(TRAILER, 0)], start=1):
        name = entry.name.encode() + b"\0"
        nlink = 2 if entry.mode & S_IFMT == S_IFDIR else 1
        fields = (ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0, *entry.rdev, len(name), 0)
        out += MAGIC + "".join(f"{v:08x}" for v in fields).encode() + name
        _pad(out)
        out += entry.data
        _pad(out)
    return bytes(out)


def for_init(elf: bytes) -> bytes:
    """An initramfs whose /init is `elf`, with /dev/console for its output."""
    return newc([Entry("dev", S_IFDIR | 0o755),
                 Entry("dev/console", S_IFCHR | 0o600, rdev=CONSOLE),
                 Entry("init", S_IFREG | 0o755, elf)])


def members(archive: bytes) -> dict[str, Entry]:
    """Read a newc archive back (name -> entry), for checking what was written."""
    out: dict[str, Entry] = {}
    pos = 0
    while True:
        if archive[pos:pos + 6] != MAGIC:
            raise ValueError(f"offset {pos}: not a newc header")
        fields = [int(archive[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, namesize = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        pos += 110
        name = archive[pos:pos + namesize - 1].decode()
        pos += namesize + (-(pos + namesize) % 4)
        data = archive[pos:pos + size]
        pos += size + (-(pos + size) % 4)
        if name == TRAILER:
            return out
        out[name] = Entry(name, mode, data, rdev)
