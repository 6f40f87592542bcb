"""Emitters, one per ISA, behind one interface: `emitter_for(abi).render(micro_ops)`."""
from __future__ import annotations

from collections.abc import Mapping

from conformance.emit.aarch64 import Aarch64Emitter
from conformance.emit.base import Emitter
from conformance.emit.x86_64 import X86_64Emitter
from conformance.lower import NO_FAULTS, Faults
from targets.tables import Abi

EMITTERS: dict[str, type[Emitter]] = {cls.isa: cls for cls in (X86_64Emitter, Aarch64Emitter)}


def emitter_for(abi: Abi, faults: Faults = NO_FAULTS,
                routines: Mapping[str, int] | None = None) -> Emitter:
    """The emitter for the ABI's ISA, reaching the runtime at `routines` (label -> address);
    ValueError naming the supported ISAs otherwise."""
    try:
        return EMITTERS[abi.isa](abi, faults, routines)
    except KeyError:
        raise ValueError(f"no emitter for ISA {abi.isa!r} ({abi.name}); "
                         f"supported: {', '.join(sorted(EMITTERS))}") from None


__all__ = ["EMITTERS", "Emitter", "emitter_for"]
