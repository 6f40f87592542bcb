"""Raw ABI values <-> the kernel model's vocabulary, through the ABI table only.

The model speaks names (signals, flags, errnos, si_codes) and symbolic sizes; a guest speaks
numbers and structs. Every number here comes from `targets.tables.Abi`.
"""
from __future__ import annotations

from conformance.events import Errno, WaitStatus
from conformance.ir import SS_FLAGS, Flags, SigSet, StackSize
from oracle.kernel import Stack
from oracle.signals import Signal
from targets.tables import Abi

_STANDARD = range(1, 32)  # standard signal numbers: the model wants them by name


def _encode_linux_status(status: WaitStatus, signo) -> int:
    """A wait status word in Linux's encoding (the same on every Linux ABI)."""
    if status.how == "exited":
        return (status.value & 0xFF) << 8
    if status.how == "killed":
        return signo(status.value) | (0x80 if status.core else 0)
    if status.how == "stopped":
        return signo(status.value) << 8 | 0x7F
    if status.how == "continued":
        return 0xFFFF
    raise ValueError(f"cannot encode wait status {status}")


WAIT_STATUS_ENCODERS = {"linux": _encode_linux_status}


class Codec:
    """Conversions for one ABI."""

    def __init__(self, abi: Abi):
        self.abi = abi
        try:
            self._status = WAIT_STATUS_ENCODERS[abi.os]
        except KeyError:
            raise ValueError(f"{abi.name}: no wait-status encoding for OS {abi.os!r} "
                             f"(known: {', '.join(WAIT_STATUS_ENCODERS)})") from None
        self.sigset_bytes = abi.limits["sigset_bytes"]

    # -- signals -----------------------------------------------------------------------------

    def signal(self, number: int) -> Signal | None:
        """The model's name for a signal number; None for a standard number the table lacks."""
        name = self.abi.signal_name(number)
        if name is not None:
            return name
        return None if number in _STANDARD else number

    def signo(self, sig: Signal) -> int:
        """A model signal as its number."""
        return self.abi.signals[sig] if isinstance(sig, str) else sig

    def sigset(self, bits: int) -> SigSet:
        """A kernel sigset word as a SigSet (bits of unnamed standard numbers are dropped)."""
        members = []
        for bit in range(8 * self.sigset_bytes):
            if bits >> bit & 1:
                sig = self.signal(bit + 1)
                if sig is not None:
                    members.append(sig)
        return SigSet(tuple(members))

    def sigbits(self, sigs) -> int:
        """A collection of model signals as a sigset word."""
        bits = 0
        for sig in sigs:
            bits |= 1 << (self.signo(sig) - 1)
        return bits

    def si_code(self, name: str) -> int:
        """A si_code name as its number."""
        return self.abi.si_codes[name]

    # -- flags and choices -------------------------------------------------------------------

    def flags(self, value: int, family) -> Flags:
        """The named bits of `family` set in `value`, plus the bits left over."""
        names = tuple(n for n in family if n in self.abi.flags and value & self.abi.flags[n])
        return Flags(names, value & ~self.bits(names))

    def bits(self, names) -> int:
        """Flag names as their OR-ed value."""
        value = 0
        for name in names:
            value |= self.abi.flags[name]
        return value

    def choice(self, value: int, family) -> str | int:
        """The name in `family` whose value is `value`, else the number itself."""
        for name in family:
            if self.abi.flags.get(name) == value:
                return name
        return value

    def errno(self, error: Errno) -> int:
        """A model error as the negative number a syscall returns."""
        return -self.abi.errno[error.name]

    def wait_status(self, status: WaitStatus) -> int:
        """A model wait status as the word wait4 stores."""
        return self._status(status, self.signo)

    # -- alternate stacks --------------------------------------------------------------------

    def stack_in(self, sp: int, flags: int, size: int) -> Stack:
        """A guest stack_t as the model's Stack: the base stays the guest address, the size
        becomes MINSIGSTKSZ plus an offset, so the model's ABI-neutral size rule applies."""
        named = self.flags(flags, SS_FLAGS)
        minimum = self.abi.limits["MINSIGSTKSZ"]
        return Stack(sp, StackSize("MINSIGSTKSZ", size - minimum), frozenset(named.names),
                     named.bits)

    def stack_out(self, stack: Stack) -> tuple[int, int, int]:
        """(ss_sp, ss_flags, ss_size) of a model Stack."""
        return (stack.base if isinstance(stack.base, int) else 0, self.bits(stack.flags),
                self.size(stack.size))

    def size(self, size) -> int:
        """A model stack size (int or StackSize) in bytes."""
        if isinstance(size, StackSize):
            return self.abi.limits[size.name] + size.delta
        return size
