"""conformance/check.py: batches in flight at once, verdicts in program order, and runners
that must run one batch at a time."""
from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from conformance.batch import BatchTooLarge
from conformance.check import DEFAULT_JOBS, batch_split, check, in_flight
from conformance.cli import load_corpus
from e2e import disagreements, runner_or_skip
from oracle import predict
from targets.runners import get


class Counting:
    """Wraps a runner's `run` and records how many runs overlapped at most."""

    def __init__(self, runner, parallel: bool):
        self.inner = dataclasses.replace(runner, parallel=parallel)
        self.lock, self.now, self.most, self.calls = threading.Lock(), 0, 0, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def run(self, elf, timeout):
        with self.lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.2)  # make overlap certain when batches are allowed to overlap
            return self.inner.run(elf, timeout)
        finally:
            with self.lock:
                self.now -= 1


@pytest.mark.e2e
@pytest.mark.parametrize("parallel, jobs, most", [(True, 3, 3), (False, 3, 1), (True, 1, 1)])
def test_batches_overlap_only_when_the_runner_allows_it(parallel, jobs, most):
    runner = Counting(runner_or_skip("x86_64-native"), parallel)
    programs = [p for p in load_corpus("basic") if "deadlock" not in p.name][:24]
    report = check(programs, [predict(p) for p in programs], runner, batch_size=4, jobs=jobs)
    assert runner.calls == 6 and runner.most == most
    assert not disagreements(report)
    assert [v.program.name for v in report.verdicts] == [p.name for p in programs]
    assert [v.index for v in report.verdicts] == list(range(len(programs)))


def test_the_reference_machine_runs_one_batch_at_a_time():
    assert get("x86_64-ref").parallel is False and get("x86_64-native").parallel is True


def test_batches_in_flight_come_from_the_caller_then_the_target_then_the_default():
    native, qemu, ref = get("x86_64-native"), get("aarch64-qemu-user"), get("x86_64-ref")
    assert (in_flight(native), in_flight(native, 3)) == (DEFAULT_JOBS, 3)
    assert (in_flight(qemu), in_flight(qemu, 2)) == (32, 2)
    assert (in_flight(ref), in_flight(ref, 8)) == (1, 1)


@pytest.mark.parametrize("count, size, jobs, split", [
    (1000, 100, 4, 100), (200, 100, 4, 50), (3, 100, 4, 1), (0, 100, 4, 1), (10, 100, 1, 10)])
def test_a_short_run_is_split_so_every_job_gets_a_batch(count, size, jobs, split):
    assert batch_split(count, size, jobs) == split


def test_a_batch_whose_image_is_too_large_runs_as_two_halves(monkeypatch):
    import conformance.check as check_module
    real_build, built = check_module.build, []

    def three_fit(programs, *args, **kwargs):
        if len(programs) > 3:
            raise BatchTooLarge(f"batch of {len(programs)} programs is too large")
        built.append(len(programs))
        return real_build(programs, *args, **kwargs)

    monkeypatch.setattr(check_module, "build", three_fit)
    programs = load_corpus("basic")[:10]
    report = check(programs, [predict(p) for p in programs], get("x86_64-ref"), batch_size=10)
    assert sorted(built) == [2, 2, 3, 3] and report.runs == 4
    assert not disagreements(report)
    assert [v.index for v in report.verdicts] == list(range(len(programs)))


def test_a_single_program_too_large_for_an_image_is_an_error(monkeypatch):
    import conformance.check as check_module

    def none_fit(programs, *args, **kwargs):
        raise BatchTooLarge(f"batch of {len(programs)} programs is too large")

    monkeypatch.setattr(check_module, "build", none_fit)
    programs = load_corpus("basic")[:2]
    with pytest.raises(BatchTooLarge, match="batch of 1 programs"):
        check(programs, [predict(p) for p in programs], get("x86_64-ref"), batch_size=2)


@pytest.mark.e2e
@pytest.mark.parametrize("own_size, runs", [(100, 2), (4, 3)])
def test_a_target_with_its_own_batch_size_gets_as_few_batches_as_keep_the_jobs_busy(own_size,
                                                                                     runs):
    runner = dataclasses.replace(runner_or_skip("x86_64-native"), batch_size=own_size)
    programs = [p for p in load_corpus("basic") if "deadlock" not in p.name][:12]
    report = check(programs, [predict(p) for p in programs], runner, batch_size=1, jobs=2)
    assert report.runs == runs and not disagreements(report)
