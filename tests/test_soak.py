"""benchmarks/soak.py: every program ends with a verdict or a named reason, under every fault."""
from __future__ import annotations

import ast
import dataclasses
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from tests.e2e import runner_or_skip

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"
# benchmarks/ is not a package; dataclasses needs the module registered while it loads.
_spec = importlib.util.spec_from_file_location("benchmarks_soak", _PATH)
soak = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(soak)


def _accounting(out: str, target: str) -> dict:
    line = re.search(rf"^{target}: (\d+) programs, (\d+) with a verdict, (\d+) silently lost; "
                     r"(\{.*?\}); batches by fault (\{.*?\}); bundles (.*); \d+ s$", out, re.M)
    assert line, out
    total, judged, lost, counts, faults, bundles = line.groups()
    return {"total": int(total), "judged": int(judged), "lost": int(lost),
            "counts": ast.literal_eval(counts), "faults": ast.literal_eval(faults), "bundles": bundles}


@pytest.mark.parametrize("target, kinds", [
    ("x86_64-native", 4),
    ("x86_64-linux-vm", 5),  # never-end too: the VM is cut short when silent
])
def test_every_program_is_accounted_for_under_every_fault(target, kinds, capsys):
    runner_or_skip(target)
    rc = soak.main(["--programs", str(10 * kinds), "--batch", "10", "--targets", target,
                    "--seed", "2"])
    out = capsys.readouterr().out
    acct = _accounting(out, target)
    assert rc == 0 and acct["lost"] == 0, out
    assert acct["total"] == acct["judged"] == 10 * kinds
    assert sum(acct["counts"].values()) == acct["total"]
    assert len(acct["faults"]) == kinds and set(acct["faults"].values()) == {1}, acct
    # die-after and truncation cost verdicts their reason, and the bundle of each such batch
    # meets the full disk and is reported, not raised
    assert re.search(r"^ +\d+  \S.*: the runner was killed mid-batch$", out, re.M), out
    assert "not written: No space left on device" in acct["bundles"], acct
    assert out.rstrip().endswith("silently lost in all: 0")


def _edit_reports(monkeypatch, edit) -> None:
    """The soak's checks give edit(verdicts) instead of their real verdicts."""
    real_check = soak.check

    def edited_check(programs, expected, runner, **kwargs):
        report = real_check(programs, expected, runner, **kwargs)
        return dataclasses.replace(report, verdicts=edit(report.verdicts))
    monkeypatch.setattr(soak, "check", edited_check)


def test_a_program_without_a_verdict_is_counted_as_lost(monkeypatch, capsys):
    runner_or_skip("x86_64-native")
    _edit_reports(monkeypatch, lambda verdicts: verdicts[:-1])
    rc = soak.main(["--programs", "20", "--batch", "10", "--targets", "x86_64-native"])
    out = capsys.readouterr().out
    assert rc == 1
    acct = _accounting(out, "x86_64-native")
    assert (acct["judged"], acct["lost"]) == (18, 2), out
    assert out.rstrip().endswith("silently lost in all: 2")


def test_a_divergence_of_the_program_itself_is_run_again_unbroken(monkeypatch, capsys):
    runner_or_skip("x86_64-native")
    from conformance.compare import DIVERGES
    _edit_reports(monkeypatch, lambda verdicts: [
        dataclasses.replace(verdicts[0], status=DIVERGES, detail="planted")] + verdicts[1:])
    rc = soak.main(["--programs", "10", "--batch", "10", "--targets", "x86_64-native"])
    out = capsys.readouterr().out
    assert rc == 0 and _accounting(out, "x86_64-native")["counts"].get(DIVERGES) == 1, out
    # the program really agrees: rerun as is and with yields, it never diverges again
    assert re.search(r"^ +1  diverges \(timing-sensitive\): planted \[0/3 reruns as is, 0/3 "
                     r"with yields: timing-sensitive\]$", out, re.M), out
