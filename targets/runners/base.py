"""The runner interface: a target that executes batch ELFs and returns their raw output.

A runner knows nothing of the IR. It says whether it can run here (`unavailable()` gives the
reason and `enable` the command that fixes it), and runs an ELF under the sandbox.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from targets.runners.sandbox import RunResult
from targets.tables import Abi, load


class TargetError(RuntimeError):
    """A target cannot run what it was given (one line, for the user)."""


ELF_MACHINES = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64", "EM_386": "i386",
                "EM_ARM": "arm", "EM_RISCV": "riscv64"}


def elf_isa(elf: bytes, name: str = "the file") -> str:
    """The ISA an ELF is built for (pyelftools reads the header); TargetError if not an ELF."""
    try:
        header = ELFFile(io.BytesIO(elf)).header
    except ELFError as exc:
        raise TargetError(f"{name} is not an ELF file ({exc})") from None
    if header["e_ident"]["EI_CLASS"] != "ELFCLASS64":
        raise TargetError(f"{name} is a 32-bit ELF; targets run 64-bit static ELFs")
    machine = header["e_machine"]
    return ELF_MACHINES.get(machine, str(machine))


@dataclass(frozen=True)
class Runner:
    """A target: a name, the ABI it speaks, and how to run an ELF there."""

    name: str
    abi_name: str
    enable: str = ""
    batch_ending: str = "exit"      # how the batch driver ends (lower.ENDINGS)
    contained: bool = False         # True: the target is its own sandbox (a VM)
    batch_size: int | None = None   # programs per batch when the target wants its own
    parallel: bool = True           # False: batches must run one at a time (in-process targets)
    lanes: int = 16                 # programs of a batch run at once (conformance.lanes)
    jobs: int | None = None         # batches in flight, when the target wants other than the default

    @property
    def abi(self) -> Abi:
        """The ABI table of the target."""
        return load(self.abi_name)

    @property
    def isa(self) -> str:
        """The ISA of the target."""
        return self.abi.isa

    def unavailable(self) -> str | None:
        """None if the target can run here, else the reason it cannot."""
        raise NotImplementedError

    def version(self) -> str:
        """What exactly runs the ELFs (emulator version, host kernel)."""
        raise NotImplementedError

    def argv(self) -> list[str]:
        """The command that the ELF path is appended to."""
        raise NotImplementedError

    def check(self, elf: bytes, name: str = "the ELF") -> None:
        """TargetError unless this target can execute `elf`."""
        isa = elf_isa(elf, name)
        if isa != self.isa:
            raise TargetError(f"{name} is an {isa} ELF; target {self.name} runs {self.isa}")

    def run(self, elf: bytes, timeout: float) -> RunResult:
        """Execute an ELF (checked first) and return its raw output."""
        from targets.runners import sandbox
        reason = self.unavailable()
        if reason:
            raise TargetError(f"target {self.name} is not available: {reason}"
                              + (f" (enable: {self.enable})" if self.enable else ""))
        self.check(elf)
        return sandbox.run(self.argv(), elf, timeout)
