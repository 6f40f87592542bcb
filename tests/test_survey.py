"""The survey: causes grouped per target and call, splits between targets, their classes."""
from __future__ import annotations

from conformance.check import TargetReport
from conformance.compare import AGREES, DIVERGES, Difference, Verdict
from conformance.findings import KNOWN
from conformance.survey import causes, classify, splits
from generators import sample


def _verdict(program, status, call="", observed="x"):
    diff = Difference(0, 1, "expected", observed, f"{call}(a, b)") if call else None
    return Verdict(program, 0, status, f"{status} at {call}", diff)


def _reports(parse, table):
    """table: {target: [(status, call, observed) per program]}"""
    programs = [parse(f"getpid()\nexit({i})\n") for i in range(len(next(iter(table.values()))))]
    reports = []
    for target, rows in table.items():
        r = TargetReport(target, "v")
        r.verdicts = [_verdict(p, *row) for p, row in zip(programs, rows)]
        reports.append(r)
    return programs, reports


def test_causes_group_by_target_status_and_call(parse):
    _, reports = _reports(parse, {
        "aarch64-qemu-user": [(DIVERGES, "ppoll", "x"), (DIVERGES, "ppoll", "y"),
                              (DIVERGES, "sigaltstack", "x"), (AGREES, "", "")],
        "x86_64-native": [(AGREES, "", "")] * 4})
    found = causes(reports)
    assert [(c.target, c.status, c.call, len(c.verdicts)) for c in found] == [
        ("aarch64-qemu-user", DIVERGES, "ppoll", 2),
        ("aarch64-qemu-user", DIVERGES, "sigaltstack", 1)]


def test_splits_name_who_saw_what(parse):
    programs, reports = _reports(parse, {
        "aarch64-qemu-user": [(DIVERGES, "ppoll", "x"), (AGREES, "", ""), (DIVERGES, "kill", "z")],
        "aarch64-linux-vm": [(AGREES, "", ""), (AGREES, "", ""), (DIVERGES, "kill", "z")],
        "x86_64-linux-vm": [(AGREES, "", ""), (AGREES, "", ""), (DIVERGES, "kill", "z")]})
    found = splits(programs, reports)
    assert [s.program for s in found] == [programs[0], programs[2]]
    assert found[0].verdict.startswith("emulator limitation")
    assert found[0].groups == [(("aarch64-qemu-user",), DIVERGES),
                               (("aarch64-linux-vm", "x86_64-linux-vm"), AGREES)]
    assert found[1].verdict.startswith("oracle error")
    assert found[1].groups == [(("aarch64-qemu-user", "aarch64-linux-vm", "x86_64-linux-vm"),
                                DIVERGES)]


def test_classify_tells_the_cases_apart():
    vm_a, vm_x, user_a = "aarch64-linux-vm", "x86_64-linux-vm", "aarch64-qemu-user"
    assert classify([((user_a,), KNOWN), ((vm_a, vm_x), AGREES)]).startswith(
        "emulator limitation, documented")
    assert classify([((vm_a,), DIVERGES), ((vm_x, user_a), AGREES)]) == \
        "architecture difference between real kernels"
    assert classify([((vm_a,), DIVERGES), ((vm_x,), DIVERGES)]).endswith(
        "(the real kernels disagree with each other too)")
    assert classify([((user_a,), DIVERGES)]).startswith("emulator limitation or oracle error")
    assert classify([((vm_a, "aarch64-native"), AGREES)]) == \
        "outcomes differ, each one the oracle allows"


def test_sample_is_reproducible_and_named():
    first = sample(30, family="pipes", max_ops=8, seed=7)
    assert first == sample(30, family="pipes", max_ops=8, seed=7)
    assert len(first) == 30
    assert [p.name for p in first[:2]] == ["generated/0", "generated/1"]
    assert first != sample(30, family="pipes", max_ops=8, seed=8)


def test_a_divergence_that_reruns_do_not_reproduce_is_not_an_architecture_difference(parse):
    import dataclasses
    from conformance.check import DETERMINISTIC, FLAKY
    programs, reports = _reports(parse, {
        "aarch64-linux-vm": [(DIVERGES, "sigsuspend", "handler")] * 2,
        "x86_64-linux-vm": [(AGREES, "", "")] * 2})
    vm_a = reports[0]
    vm_a.verdicts = [dataclasses.replace(vm_a.verdicts[0], stability=FLAKY),
                     dataclasses.replace(vm_a.verdicts[1], stability=DETERMINISTIC)]
    found = splits(programs, reports)
    assert found[0].verdict.startswith("timing-sensitive or flaky on aarch64-linux-vm")
    assert found[1].verdict == "architecture difference between real kernels"
