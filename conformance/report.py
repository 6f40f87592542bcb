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
        lines.append(f"{r.target}: {r.version}; {r.runs} batch run(s), {r.seconds:.2f} s "
                     f"({r.wall_seconds:.2f} s wall)")
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
        lines += _across_targets(programs, reports)
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


def _across_targets(programs: Sequence[Program], reports: Sequence[TargetReport]) -> list[str]:
    """Real kernels of different ISAs compared, and what each split between targets suggests."""
    from conformance.survey import cross_isa, splits
    lines = []
    for a, b, differ in cross_isa(programs, reports):
        lines.append(f"across ISAs: {a} and {b} saw {len(differ)} of {len(programs)} programs "
                     "differently" + (": " + ", ".join(p.name for p in differ[:20]) if differ else ""))
    kinds: dict[str, int] = {}
    for split in splits(programs, reports) if len(reports) > 1 else []:
        kinds[split.verdict] = kinds.get(split.verdict, 0) + 1
    if kinds:
        lines.append("programs where the targets split, by what that suggests:")
        lines += [f"  {n:5d}  {kind}" for kind, n in sorted(kinds.items(), key=lambda x: -x[1])]
    return [""] + lines if lines else []


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
            "seconds": round(r.seconds, 3), "wall_seconds": round(r.wall_seconds, 3),
            "notes": r.notes, "counts": r.counts(),
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


def agreement_lines(reports: Sequence[TargetReport]) -> list[str]:
    """Per target: verdict counts, agreement rate, and where the time went."""
    lines = []
    for r in reports:
        counts = r.counts()
        total = max(len(r.verdicts), 1)
        ok, known = counts.get(AGREES, 0), counts.get(KNOWN, 0)
        parts = ", ".join(f"{counts[k]} {k}" for k in ORDER if counts.get(k))
        boot = (f"; booting {r.boot_seconds:.1f} s of the batch time, "
                f"{1000 * (r.seconds - r.boot_seconds) / total:.0f} ms per program after boot"
                if r.boot_seconds else "")
        lines.append(f"  {r.target}: {len(r.verdicts)} programs: {parts}; agreement "
                     f"{100.0 * ok / total:.2f}% ({100.0 * (ok + known) / total:.2f}% with known "
                     f"limitations); {r.runs} runs, {r.wall_seconds:.1f} s wall, batch time "
                     f"{r.seconds:.1f} s{boot}")
    return lines


def survey_text(result, *, limit: int = 40) -> str:
    """A survey in words: agreement, causes with their shrunk examples, cross-target splits."""
    from conformance.ir import op_count as ops
    from conformance.survey import cross_isa
    from conformance.syntax import format as format_program
    lines = ["agreement with the oracle:"] + agreement_lines(result.reports)
    lines += _known_section(result.reports)
    if result.causes:
        lines += ["", f"{len(result.causes)} distinct causes of disagreement (target, verdict, "
                      "call where the outcome first parts, or the documented finding):"]
    for n, cause in enumerate(result.causes, 1):
        example = cause.shrunk or cause.example.program
        verdict = cause.shrunk_verdict or cause.example
        shrunk = (f"; shrunk from {ops(cause.example.program)} to {ops(example)} ops in "
                  f"{cause.shrink_seconds:.1f} s" if cause.shrunk is not None else "")
        lines.append(f"[{n}] {cause.target}: {cause.status} at {cause.call}: "
                     f"{len(cause.verdicts)} programs (e.g. {cause.example.program.name}){shrunk}")
        lines.append(f"    {verdict.detail}")
        lines += ["    | " + line for line in format_program(example).rstrip().splitlines()]
    for a, b, differ in cross_isa(result.programs, result.reports):
        lines += ["", f"across ISAs: {a} and {b} saw {len(differ)} of {len(result.programs)} "
                      "programs differently" + (": " + ", ".join(p.name for p in differ[:limit])
                                                if differ else "")]
    if result.splits:
        patterns: dict[tuple[str, str], list[str]] = {}
        for split in result.splits:
            seen = " | ".join(f"{','.join(t)}: {SYMBOL.get(s, s)}" for t, s in split.groups)
            patterns.setdefault((split.verdict, seen), []).append(split.program.name)
        lines += ["", f"{len(result.splits)} programs where the targets did not all agree with "
                      "the oracle and each other:"]
        for (kind, seen), names in sorted(patterns.items(), key=lambda x: -len(x[1])):
            lines.append(f"  {len(names):5d}  {kind}: {seen}")
            lines.append(f"         e.g. {', '.join(names[:5])}")
    return "\n".join(lines)


def survey_json(result, not_run: dict[str, str]) -> str:
    """A survey as JSON: the per-program report plus causes and splits."""
    from conformance.survey import cross_isa
    from conformance.syntax import format as format_program
    data = json.loads(as_json(result.programs, result.reports, not_run))
    data["causes"] = [{
        "target": c.target, "status": c.status, "call": c.call, "programs": len(c.verdicts),
        "examples": [v.program.name for v in c.verdicts[:20]],
        "shrunk": format_program(c.shrunk) if c.shrunk is not None else None,
        "detail": (c.shrunk_verdict or c.example).detail,
        "shrink_seconds": round(c.shrink_seconds, 2)} for c in result.causes]
    data["cross_isa"] = [{"targets": [a, b], "programs": [p.name for p in differ]}
                         for a, b, differ in cross_isa(result.programs, result.reports)]
    data["splits"] = [{"program": s.program.name, "verdict": s.verdict,
                       "groups": [{"targets": list(t), "status": st} for t, st in s.groups]}
                      for s in result.splits]
    data["seconds"] = round(result.seconds, 2)
    return json.dumps(data, indent=2)
