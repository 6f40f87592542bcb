"""Reproducer bundles: everything a developer needs to see, rebuild and rerun one failure.

A bundle is a directory: the program text, per ISA the lowered assembly, the ELF and
standalone C and Rust sources built from the same micro-ops, the oracle's expected records,
each target's observed records and verdict, and `bundle.json`, which `conformance replay`
reads to run it again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

from conformance.batch import build
from conformance.compare import Verdict, describe
from conformance.events import Expected, Outcome
from conformance.ir import Program
from conformance.syntax import format as format_program
from targets.tables import load

ABIS = ("linux-x86_64", "linux-aarch64")


def _outcome_text(outcome: Outcome) -> list[str]:
    lines = [f"p{lpid}: {describe(e)}" for lpid, events in outcome.procs for e in events]
    lines += [f"harness reaped p{lpid}: {status}" for lpid, status in outcome.reaped]
    return lines + (["(hangs: the watchdog fires)"] if outcome.hung else [])


def write(program: Program, expected: Expected, verdicts: dict[str, Verdict], directory: Path,
          *, note: str = "", faults=None) -> Path:
    """Write a bundle for `program` under `directory`; returns the bundle's path.

    `faults` (a planted bug) is recorded, built into the ELFs, and re-applied by replay.
    """
    from conformance.lower import NO_FAULTS
    faults = faults or NO_FAULTS
    if note:  # the description carries how the program was found
        program = dataclasses.replace(program, doc="\n".join(x for x in (program.doc, note) if x))
    text = format_program(program)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    path = directory / f"{time.strftime('%Y%m%d-%H%M%S')}-{digest}"
    path.mkdir(parents=True, exist_ok=True)
    (path / "program.prog").write_text(text)
    files: dict[str, dict[str, str]] = {}
    for abi_name in ABIS:
        abi = load(abi_name)
        try:
            batch = build([program], abi, faults=faults)
        except ValueError:  # the planted fault names something this ISA lacks: build it clean
            batch = build([program], abi)
        isa = abi.isa
        (path / f"{isa}.s").write_text(batch.listing)
        (path / f"{isa}.elf").write_bytes(batch.elf)
        (path / f"{isa}.elf").chmod(0o755)
        files[isa] = {"listing": f"{isa}.s", "elf": f"{isa}.elf"}
        for kind, suffix in (("c", "c"), ("rust", "rs")):
            try:
                from conformance import repro
                source = getattr(repro, f"{kind}_source")(program, abi)
            except Exception as exc:  # a backend that cannot express the program says why
                source = f"/* no {kind} reproducer: {type(exc).__name__}: {exc} */\n"
            (path / f"{isa}.{suffix}").write_text(source)
            files[isa][kind] = f"{isa}.{suffix}"
    lines = []
    for n, outcome in enumerate(expected.outcomes, start=1):
        lines.append(f"allowed outcome {n} of {len(expected.outcomes)}:")
        lines += ["  " + line for line in _outcome_text(outcome)]
    (path / "expected.txt").write_text("\n".join(lines) + "\n")
    observed = []
    for target, verdict in verdicts.items():
        observed.append(f"{target}: {verdict.status}: {verdict.detail}")
        if verdict.observed is not None:
            observed += ["  " + line for line in _outcome_text(verdict.observed)]
    (path / "observed.txt").write_text("\n".join(observed) + "\n")
    meta = {"program": "program.prog", "targets": sorted(verdicts), "files": files,
            "injected_fault": dataclasses.asdict(faults) if faults != NO_FAULTS else None,
            "verdicts": {t: {"status": v.status, "detail": v.detail} for t, v in verdicts.items()},
            "replay": f"conformance replay {path}"}
    (path / "bundle.json").write_text(json.dumps(meta, indent=2) + "\n")
    (path / "README.txt").write_text(
        f"Reproducer for a divergence found by conformance.\n\n"
        f"Rerun it on the targets it failed on:   conformance replay {path}\n"
        f"Run one ELF by hand (inside a sandbox): conformance exec {path}/aarch64.elf --target aarch64-qemu-user\n"
        f"The C and Rust sources carry their build command in their first lines.\n")
    return path


def load_bundle(path: Path):
    """The program, the target names and the planted fault (or None) recorded in a bundle."""
    from conformance.lower import Faults
    from conformance.syntax import parse_file
    meta = json.loads((path / "bundle.json").read_text())
    fault = meta.get("injected_fault")
    program = parse_file(path / meta["program"])
    return (dataclasses.replace(program, name=path.name), list(meta["targets"]),
            Faults(**fault) if fault else None)


def default_directory() -> Path:
    """Where bundles go unless told otherwise."""
    return Path(".conformance") / "bundles"


__all__ = ["write", "load_bundle", "default_directory", "ABIS"]
