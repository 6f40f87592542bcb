"""keystone-engine behind one call: assembly text -> machine code for an ABI's ISA."""
from __future__ import annotations

import functools
import threading

import keystone

from targets.tables import Abi


# Batches are built in worker threads (conformance.check), and keystone (LLVM MC inside)
# documents no thread safety: one assembly at a time.
_LOCK = threading.Lock()


class AssemblyError(ValueError):
    """keystone rejected the listing; the message names the statement it stopped at."""


# One engine per (arch, mode), made and used under _LOCK.
_engine_for = functools.cache(keystone.Ks)


def _engine(abi: Abi) -> keystone.Ks:
    arch = getattr(keystone, f"KS_ARCH_{abi.keystone_arch}", None)
    mode = getattr(keystone, f"KS_MODE_{abi.keystone_mode}", None)
    if arch is None or mode is None:
        raise AssemblyError(f"{abi.name}: keystone has no arch {abi.keystone_arch!r} / "
                            f"mode {abi.keystone_mode!r}")
    return _engine_for(arch, mode)


def assemble(listing: str, abi: Abi, address: int) -> bytes:
    """Assemble `listing` as if loaded at `address`."""
    try:
        with _LOCK:
            # as_bytes: the binding's default copies the code into a list one byte at a time,
            # which took most of the assembly time of a batch.
            encoding, _count = _engine(abi).asm(listing, address, as_bytes=True)
    except keystone.KsError as exc:
        statements = [ln.strip() for ln in listing.splitlines()
                      if ln.strip() and not ln.strip().startswith(("#", "//"))]
        done = exc.get_asm_count()
        near = statements[done] if done is not None and done < len(statements) else "?"
        raise AssemblyError(f"{abi.name}: keystone: {exc} (after {done} statements, near "
                            f"{near!r})") from None
    return bytes(encoding or b"")


def assemble_with_addresses(listing: str, labels, abi: Abi,
                            address: int) -> tuple[bytes, list[int]]:
    """(code, addresses of `labels`) of `listing` assembled at `address`.

    keystone gives no symbol table, so a `.quad` of each label is appended and read back;
    labels take no space, so the code is byte for byte that of `listing` alone."""
    labels = list(labels)
    image = assemble(listing + "".join(f"    .quad {label}\n" for label in labels), abi,
                     address)
    split = len(image) - 8 * len(labels)
    return image[:split], [int.from_bytes(image[k:k + 8], "little")
                           for k in range(split, len(image), 8)]
