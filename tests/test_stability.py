"""Reruns before reporting: a divergence is labelled by how reliably it comes back."""
from __future__ import annotations

import pytest

from conformance.check import DETERMINISTIC, check
from conformance.compare import DIVERGES
from conformance.lower import Faults, Rodata, Syscall, lower_program
from e2e import runner_or_skip
from oracle import predict
from oracle.kernel import Done, Kernel
from targets import tables


def test_perturbation_yields_before_every_op(parse):
    program = parse("r, w = pipe()\nclose(r)\nclose(w)\n")
    abi = tables.load("linux-aarch64")
    plain = lower_program(program, 0, abi, Rodata(0x400000))
    shaken = lower_program(program, 0, abi, Rodata(0x400000), Faults(yield_between_ops=True))
    yields = [op for op in shaken if isinstance(op, Syscall) and op.name == "sched_yield"]
    assert len(yields) == 3 and not any(isinstance(op, Syscall) and op.name == "sched_yield"
                                        for op in plain)


@pytest.mark.e2e
def test_a_real_divergence_is_rerun_and_called_deterministic(parse, monkeypatch):
    runner = runner_or_skip("x86_64-native")
    program = parse("r, w = pipe()\nclose(w)\nread(r, 4)\n")
    real = Kernel._read
    monkeypatch.setattr(Kernel, "_read", lambda self, p, fd, n: Done(1, data=b"x") if n else real(self, p, fd, n))
    report = check([program], [predict(program)], runner, reruns=2)
    (verdict,) = report.verdicts
    assert verdict.status == DIVERGES and verdict.stability == DETERMINISTIC
    assert "[2/2 reruns as is, 2/2 with yields: deterministic]" in verdict.detail
