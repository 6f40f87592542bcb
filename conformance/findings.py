"""Known target limitations (targets/findings.toml): explain a divergence, never hide it."""
from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from conformance.compare import Verdict
from conformance.ir import Param, ops_by_index

FINDINGS_FILE = Path(__file__).parent.parent / "targets" / "findings.toml"
KNOWN = "known limitation"


@dataclass(frozen=True)
class Finding:
    """One documented limitation of some targets at one kind of op."""

    id: str
    targets: tuple[str, ...]
    call: str
    why: str
    reference: str
    signal_in: tuple[int, ...] = ()

    def matches(self, target: str, op) -> bool:
        """Whether this finding explains a divergence of `target` first seen at `op`."""
        if op.call != self.call or not any(fnmatch.fnmatch(target, t) for t in self.targets):
            return False
        if self.signal_in:
            signals = [a for p, a in zip(op.spec.params, op.args) if p is Param.SIGNAL]
            return any(s in self.signal_in for s in signals)
        return True


@cache
def load(path: Path = FINDINGS_FILE) -> tuple[Finding, ...]:
    """Every finding in the file."""
    data = tomllib.loads(path.read_text())
    return tuple(Finding(id=f["id"], targets=tuple(f["targets"]), call=f["call"],
                         why=" ".join(f["why"].split()), reference=f["reference"],
                         signal_in=tuple(f.get("signal_in", ())))
                 for f in data.get("finding", []))


def explain(verdict: Verdict, target: str) -> Verdict:
    """The verdict, re-labelled as a known limitation if a finding explains its first difference."""
    diff = verdict.difference
    if diff is None or verdict.observed is None:
        return verdict
    ops = ops_by_index(verdict.program)
    for event in (diff.expected, diff.observed):
        op_index = getattr(event, "op", None)
        if op_index not in ops:
            continue
        for finding in load():
            if finding.matches(target, ops[op_index].op):
                return Verdict(verdict.program, verdict.index, KNOWN,
                               f"{verdict.detail} -- known: {finding.why} ({finding.reference})",
                               diff, verdict.observed, verdict.problems)
    return verdict
