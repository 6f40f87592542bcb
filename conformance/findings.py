"""Known target limitations (targets/findings.toml): explain a divergence, never hide it.

A finding either names the place of a divergence (the call at the first difference, or an
op anywhere in the program, plus text the expected/observed values must contain), or
tolerates one systematic difference (e.g. a misaligned handler stack): the program is judged
again with that difference set aside, so any other divergence behind it is still reported.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from conformance.compare import AGREES, DIVERGES, HUNG, Verdict, assess, describe
from conformance.events import Expected, Handler, Outcome
from conformance.ir import Param, ops_by_index, walk
from conformance.syntax import format_op

FINDINGS_FILE = Path(__file__).parent.parent / "targets" / "findings.toml"
KNOWN = "known limitation"


def _aligned_handlers(outcome: Outcome) -> Outcome:
    procs = tuple((lpid, tuple(dataclasses.replace(e, aligned=True) if isinstance(e, Handler) else e
                               for e in events)) for lpid, events in outcome.procs)
    return dataclasses.replace(outcome, procs=procs)


TOLERANCES = {"handler-alignment": _aligned_handlers}


@dataclass(frozen=True)
class Finding:
    """One documented limitation of some targets."""

    id: str
    targets: tuple[str, ...]
    why: str
    reference: str
    call: str = ""
    signal_in: tuple[int | str, ...] = ()
    op_contains: str = ""
    expected_contains: str = ""
    observed_contains: str = ""
    observed_any: tuple[str, ...] = ()  # the observed value contains one of these
    anywhere: bool = False      # the op may be anywhere in the program, not at the difference
    tolerate: str = ""

    def applies_to(self, target: str) -> bool:
        """Whether the finding concerns this target."""
        return any(fnmatch.fnmatch(target, t) for t in self.targets)

    def op_matches(self, op) -> bool:
        """Whether an op is the kind this finding is about."""
        if self.call and op.call != self.call:
            return False
        if self.signal_in:
            signals = [a for p, a in zip(op.spec.params, op.args) if p is Param.SIGNAL]
            if not any(s in self.signal_in for s in signals):
                return False
        return not self.op_contains or self.op_contains in format_op(op)[0]

    def explains(self, verdict: Verdict) -> bool:
        """Whether this finding accounts for the verdict's first difference."""
        diff = verdict.difference
        if diff is None or self.tolerate:
            return False
        if self.expected_contains not in describe(diff.expected):
            return False
        if self.observed_contains not in describe(diff.observed):
            return False
        if self.observed_any and not any(t in describe(diff.observed) for t in self.observed_any):
            return False
        if self.anywhere:
            return any(self.op_matches(loc.op) for loc in walk(verdict.program))
        ops = ops_by_index(verdict.program)
        indexes = [getattr(e, "op", None) for e in (diff.expected, diff.observed)]
        return any(i in ops and self.op_matches(ops[i].op) for i in indexes)

    def note(self) -> str:
        """The explanation shown with the verdict."""
        return f"known ({self.id}): {self.why} ({self.reference})"


@cache
def load(path: Path = FINDINGS_FILE) -> tuple[Finding, ...]:
    """Every finding in the file."""
    data = tomllib.loads(path.read_text())
    fields = {f.name for f in dataclasses.fields(Finding)}
    out = []
    for entry in data.get("finding", []):
        unknown = set(entry) - fields
        if unknown:
            raise ValueError(f"{path}: finding {entry.get('id')!r}: unknown keys {sorted(unknown)}")
        entry = dict(entry, why=" ".join(entry["why"].split()))
        for key in ("targets", "signal_in", "observed_any"):
            if key in entry:
                entry[key] = tuple(entry[key])
        if entry.get("tolerate") and entry["tolerate"] not in TOLERANCES:
            raise ValueError(f"{path}: unknown tolerance {entry['tolerate']!r}")
        out.append(Finding(**entry))
    return tuple(out)


def explain(verdict: Verdict, target: str, expected: Expected) -> Verdict:
    """The verdict, re-labelled as a known limitation where findings account for it."""
    if verdict.status not in (DIVERGES, HUNG) or verdict.observed is None:
        return verdict
    findings = [f for f in load() if f.applies_to(target)]
    tolerated = []
    for finding in findings:
        if finding.tolerate:
            adjusted = TOLERANCES[finding.tolerate](verdict.observed)
            if adjusted != verdict.observed:
                again = assess(verdict.program, verdict.index, expected, adjusted)
                tolerated.append(finding)
                verdict = dataclasses.replace(again, observed=verdict.observed)
    notes = [f.note() for f in tolerated]
    if verdict.status == AGREES:
        return dataclasses.replace(verdict, status=KNOWN, detail="; ".join(notes))
    for finding in findings:
        if finding.explains(verdict):
            return dataclasses.replace(verdict, status=KNOWN,
                                       detail=f"{verdict.detail} -- " + "; ".join(notes + [finding.note()]))
    if tolerated:
        return dataclasses.replace(verdict, detail=f"{verdict.detail} (after setting aside "
                                   + "; ".join(notes) + ")")
    return verdict
