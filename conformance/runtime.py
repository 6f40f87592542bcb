"""The runtime routines (record writer, handlers, register diff) of an ISA, assembled once.

Every batch of an ABI carries the same routines at the same address, the start of its code, so
they are assembled the first time and reused: a batch's own listing calls them by address.
The labels' addresses come from `assemble_with_addresses` (keystone has no symbol table).
"""
from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from conformance.assemble import assemble_with_addresses
from conformance.emit import emitter_for
from conformance.lower import NO_FAULTS, Faults
from targets.tables import Abi

_LABEL = re.compile(r"^(\w+):", re.MULTILINE)


@dataclass(frozen=True)
class Runtime:
    """The routines' listing, machine code and label addresses, for code at `address`."""

    address: int
    listing: str
    code: bytes
    routines: Mapping[str, int]

    @property
    def end(self) -> int:
        """The first address after the routines."""
        return self.address + len(self.code)


_CACHE: dict[tuple, Runtime] = {}
_CACHE_LOCK = threading.Lock()


def runtime_for(abi: Abi, faults: Faults = NO_FAULTS, *, address: int) -> Runtime:
    """The routines the emitter writes for `abi` and `faults`, assembled at `address`."""
    listing = emitter_for(abi, faults).runtime().strip("\n") + "\n"
    # The listing is the key: whatever changes the routines (a fault, a table) changes it.
    key = (abi.keystone_arch, abi.keystone_mode, address, listing)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    labels = _LABEL.findall(listing)
    code, addresses = assemble_with_addresses(listing, labels, abi, address)
    made = Runtime(address, listing, code, dict(zip(labels, addresses)))
    with _CACHE_LOCK:
        return _CACHE.setdefault(key, made)
