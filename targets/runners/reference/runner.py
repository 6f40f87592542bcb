"""The reference machine as a target: `x86_64-ref`, `aarch64-ref` (see `machine`)."""
from __future__ import annotations

import time
from dataclasses import dataclass

from targets.runners.base import Runner, TargetError
from targets.runners.sandbox import RunResult

_ENABLE = "pip install 'unicorn>=2'"


def _unicorn_version() -> str | None:
    try:
        import unicorn
    except ImportError:
        return None
    return unicorn.__version__


@dataclass(frozen=True)
class ReferenceRunner(Runner):
    """Runs a batch ELF in-process on unicorn, its syscalls answered by the oracle's kernel
    model. Deterministic, and nothing runs on the host: the target is its own sandbox."""

    contained: bool = True
    enable: str = _ENABLE
    parallel: bool = False  # in-process Python: threads would only take turns on the GIL
    lanes: int = 1          # the machine's time is its own: overlapping programs saves nothing

    def unavailable(self) -> str | None:
        if _unicorn_version() is None:
            return f"the unicorn Python package is not installed ({_ENABLE})"
        return None

    def version(self) -> str:
        return f"unicorn {_unicorn_version()} + oracle kernel model (linux profile)"

    def argv(self) -> list[str]:
        raise TargetError(f"target {self.name} runs in-process: it has no command line")

    def run(self, elf: bytes, timeout: float) -> RunResult:
        """Execute the ELF on the reference machine and return what it wrote."""
        reason = self.unavailable()
        if reason:
            raise TargetError(f"target {self.name} is not available: {reason} "
                              f"(enable: {self.enable})")
        self.check(elf)
        from targets.runners.reference.machine import Machine
        start = time.monotonic()
        try:
            result = Machine(elf, self.abi).run(timeout)
        except (RuntimeError, ValueError, KeyError) as exc:
            # The model refused what the program did (e.g. an ELF built for another ABI's
            # numbers): the run ends with what it wrote so far, not a crashed suite.
            return RunResult(b"", "", None, False, time.monotonic() - start, True,
                             incident=f"the reference machine stopped: {type(exc).__name__}: {exc}")
        notes = "".join(f"reference machine: {n}\n" for n in result.notes)
        return RunResult(result.stdout, result.stderr.decode(errors="replace") + notes,
                         None if result.timed_out else result.exit_code, result.timed_out,
                         time.monotonic() - start, True, incident=result.incident)
