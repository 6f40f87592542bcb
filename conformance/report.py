"""Reports: a terminal table (program x target), the divergences in words, and JSON."""
from __future__ import annotations

import json
from typing import Sequence

from conformance.check import REFUSED, TargetReport
from conformance.compare import AGREES, CRASHED, DIVERGES, HUNG, TARGET_ERROR, describe
from conformance.findings import KNOWN
from conformance.ir import Program

SYMBOL = {AGREES: "ok", DIVERGES: "DIFF", HUNG: "HUNG", CRASHED: "CRASH",
          TARGET_ERROR: "ERROR", REFUSED: "refused", KNOWN: "known"}
ORDER = (AGREES, KNOWN, DIVERGES, HUNG, CRASHED, TARGET_ERROR, REFUSED)


def failed(reports: Sequence[TargetReport]) -> bool:
    """Whether any program neither agreed nor diverged in a documented way.

    Refusals count as failures: those programs were not checked.
    """
    return any(v.status not in (AGREES, KNOWN) for r in reports for v in r.verdicts)


def table(programs: Sequence[Program], reports: Sequence[TargetReport],
          not_run: dict[str, str], *, show_all: bool = False) -> str:
    """The terminal report. Rows are programs (all, or only those not agreeing everywhere)."""
    lines: list[str] = []
    for name, why in not_run.items():
        lines.append(f"{name}: not run ({why})")
    for r in reports:
        lines.append(f"{r.target}: {r.version}; {r.runs} batch run(s), {r.seconds:.2f} s")
        lines += [f"  note: {n}" for n in r.notes]
    if reports:
        width = max([len(p.name or f"#{i}") for i, p in enumerate(programs)] + [7])
        cols = [max(len(r.target), 7) for r in reports]
        header = "program".ljust(width) + "  " + "  ".join(r.target.ljust(c) for r, c in zip(reports, cols))
        rows = []
        for i, program in enumerate(programs):
            marks = [r.verdicts[i].status for r in reports]
            if not show_all and all(m == AGREES for m in marks):
                continue
            rows.append((program.name or f"#{i}").ljust(width) + "  " +
                        "  ".join(SYMBOL[m].ljust(c) for m, c in zip(marks, cols)))
        lines.append("")
        if rows:
            lines += [header, "-" * len(header)] + rows
        else:
            lines.append(f"all {len(programs)} programs agree with the oracle on every target run")
        details = [(r.target, v) for r in reports for v in r.verdicts
                   if v.status not in (AGREES, KNOWN)]
        if details:
            lines.append("")
            for target, v in details:
                lines.append(f"{v.program.name or f'#{v.index}'} on {target}: {v.status}: {v.detail}")
        lines += _known_section(reports)
        lines.append("")
        lines.append("summary:")
        for r in reports:
            counts = r.counts()
            parts = [f"{counts[k]} {k}" for k in ORDER if counts.get(k)]
            kinds: dict[str, int] = {}
            for v in r.verdicts:
                if v.stability:
                    kinds[v.stability] = kinds.get(v.stability, 0) + 1
            stable = (" (" + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")") if kinds else ""
            lines.append(f"  {r.target}: {len(r.verdicts)} programs: " + ", ".join(parts) + stable)
    return "\n".join(lines)


def _known_section(reports: Sequence[TargetReport]) -> list[str]:
    """Each documented limitation once, with the programs and targets it explained."""
    import re
    from conformance.findings import load
    seen: dict[str, list[str]] = {}
    for r in reports:
        for v in r.verdicts:
            if v.status == KNOWN:
                for fid in dict.fromkeys(re.findall(r"known \(([^)]+)\)", v.detail)):
                    seen.setdefault(fid, []).append(f"{v.program.name or f'#{v.index}'} on {r.target}")
    if not seen:
        return []
    by_id = {f.id: f for f in load()}
    lines = ["", "known target limitations (targets/findings.toml; `conformance findings`):"]
    for fid, where in seen.items():
        finding = by_id.get(fid)
        lines.append(f"  {fid}: {len(where)} verdicts, e.g. {', '.join(where[:3])}")
        if finding is not None:
            lines.append(f"    {finding.why} ({finding.reference})")
    return lines


def as_json(programs: Sequence[Program], reports: Sequence[TargetReport],
            not_run: dict[str, str]) -> str:
    """The whole report as JSON (stable keys, one object)."""
    return json.dumps({
        "not_run": not_run,
        "targets": [{
            "target": r.target, "version": r.version, "batches": r.runs,
            "seconds": round(r.seconds, 3), "notes": r.notes, "counts": r.counts(),
            "programs": [{
                "program": v.program.name or f"#{v.index}", "status": v.status,
                "detail": v.detail, "stability": v.stability or None,
                "difference": None if v.difference is None else {
                    "process": str(v.difference.lpid), "record": v.difference.position,
                    "op": v.difference.op_text, "expected": describe(v.difference.expected),
                    "observed": describe(v.difference.observed)},
            } for v in r.verdicts],
        } for r in reports],
    }, indent=2)
