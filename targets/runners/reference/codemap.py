"""Where an address of a batch ELF comes from: its listing line, the nearest label, the op.

keystone gives no symbol table, so the listing is assembled once more with a marker label
before every instruction, whose addresses `assemble_with_addresses` reads back; the code is
checked to be byte for byte the batch's own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from conformance.assemble import assemble_with_addresses
from conformance.batch import IMAGE_BASE, Batch

_OP = re.compile(r"^(?:#|//) op (\d+): (.*)$")


@dataclass(frozen=True)
class Line:
    """One instruction of the listing."""

    address: int
    text: str            # as the listing spells it
    label: str           # the nearest label at or before it
    op: int | None       # the op whose code it is (None: driver, runtime, a process prologue)
    op_text: str = ""    # that op as the program spells it


class CodeMap:
    """Every instruction of a batch with its address (see the module docstring)."""

    def __init__(self, batch: Batch):
        self.elf = batch.elf
        self.code_at = int.from_bytes(batch.elf[24:32], "little")  # e_entry: the code's start
        code = batch.elf[self.code_at - IMAGE_BASE:]
        marked, lines = self._mark(batch.code_listing, batch.abi.name)
        image, addresses = assemble_with_addresses(
            marked, (f"__cf_at_{k}" for k in range(len(lines))), batch.abi, self.code_at)
        if image != code:
            raise ValueError("the marked listing does not assemble to the batch's code")
        self.lines = tuple(Line(address, *line) for address, line in zip(addresses, lines))
        self.end = self.code_at + len(code)
        self._by_address = {ln.address: ln for ln in self.lines}

    @staticmethod
    def _mark(listing: str, name: str) -> tuple[str, list[tuple]]:
        out, lines = [], []
        label, op, op_text = "", None, ""
        for raw in listing.splitlines():
            text = raw.strip()
            match = _OP.match(text)
            if match:
                op, op_text = int(match.group(1)), match.group(2)
            elif text.startswith(("# program ", "// program ")):
                op, op_text = None, ""  # a process prologue or the driver's loop starts
            elif text.startswith(("#", "//")):
                pass
            elif text.endswith(":") and not raw.startswith((" ", "\t")):
                label = text[:-1]
            elif text and not text.startswith(".") and raw.startswith(" "):
                out.append(f"__cf_at_{len(lines)}:")
                lines.append((text, label, op, op_text))
            out.append(raw)
        return "\n".join(out) + "\n", lines

    def at(self, address: int) -> Line | None:
        """The instruction that starts at `address`, if one does."""
        return self._by_address.get(address)

    def ops(self) -> dict[int, int]:
        """Address -> op index, for every instruction of some op's code."""
        return {ln.address: ln.op for ln in self.lines if ln.op is not None}

    def bytes_at(self, address: int, size: int) -> bytes:
        """The instruction bytes at an address of the image."""
        return self.elf[address - IMAGE_BASE:address - IMAGE_BASE + size]
