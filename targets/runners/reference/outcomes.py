"""What a syscall handler tells the machine to do next, and register-value helpers."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Return:
    """The call completed: `value` goes to the result register (a -errno on failure)."""

    value: int


@dataclass(frozen=True)
class Outcome:
    """A call that does not simply return: one of the constants below."""

    kind: str


BLOCK = Outcome("block")        # the model said BLOCKED: repeat the call when runnable
PARK = Outcome("park")          # the driver waits in wait4 (the machine decides when to retry)
EXIT = Outcome("exit")          # the process is gone
RESTORED = Outcome("restored")  # rt_sigreturn: the registers came from the frame
HALT = Outcome("halt")          # the machine stops (reboot, or the batch's driver exited)


def s32(value: int) -> int:
    """A register's low 32 bits as a signed int (fd, pid, signal and option arguments)."""
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def u64(value: int) -> int:
    """A value as the unsigned 64-bit word a register or pointer holds."""
    return value & 0xFFFF_FFFF_FFFF_FFFF
