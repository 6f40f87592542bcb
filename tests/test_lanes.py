"""Lanes: busy programs share one lane, the rest are balanced, every program runs once."""
from __future__ import annotations

import pytest

from conformance import lanes
from conformance.lower import lower_driver
from conformance.syntax import parse
from targets.tables import load

SLEEPY = parse("setitimer(ITIMER_REAL, 150)\npause()")
QUICK = parse("getpid()")
BUSY = parse("setitimer(ITIMER_VIRTUAL, 20)\nspin()")


def test_busy_programs_stay_in_the_spinner_lanes_and_every_lane_is_balanced():
    programs = [SLEEPY, BUSY, QUICK, SLEEPY, BUSY, SLEEPY, QUICK]
    plan = lanes.plan(programs, 3)
    assert lanes.busy_lanes(3) == 1 and {1, 4} <= set(plan[0])
    assert not any(programs[i] is BUSY for lane in plan[1:] for i in lane)
    assert sorted(i for lane in plan for i in lane) == list(range(len(programs)))
    sleepers = [sum(programs[i] is SLEEPY for i in lane) for lane in plan]
    assert sleepers == [1, 1, 1]  # 150 ms each: one per lane, not 3 + 0 + 0


def test_many_lanes_spread_busy_programs_over_one_lane_in_eight():
    programs = [BUSY] * 8 + [SLEEPY] * 30
    plan = lanes.plan(programs, 16)
    assert lanes.busy_lanes(16) == 2
    holding = [k for k, lane in enumerate(plan) if any(programs[i] is BUSY for i in lane)]
    assert holding == [0, 1]
    assert [sum(programs[i] is BUSY for i in plan[k]) for k in holding] == [4, 4]


def test_one_lane_keeps_program_order():
    assert lanes.plan([BUSY, QUICK, SLEEPY], 1) == [[0, 1, 2]]
    assert lanes.plan([QUICK, QUICK], 8) == [[0], [1]]  # never more lanes than programs


def test_estimate_counts_named_durations_and_ops():
    assert lanes.estimate_ms(SLEEPY) == 152
    assert lanes.busy(BUSY) and not lanes.busy(SLEEPY)


def test_bad_lane_plans_are_refused():
    abi = load("linux-x86_64")
    with pytest.raises(ValueError, match="at least one lane"):
        lanes.plan([QUICK], 0)
    with pytest.raises(ValueError, match="each of the 2 programs once"):
        lower_driver(2, abi, 2000, lanes=[[0], [0]])


@pytest.mark.parametrize("target", ["x86_64-native", "x86_64-linux-vm"])
def test_programs_of_a_batch_run_in_separate_lanes_and_agree(target):
    from conformance.check import check
    from oracle import predict
    from tests.e2e import disagreements, runner_or_skip
    runner = runner_or_skip(target)
    orphan = parse("c1 = fork {\n    c2 = fork {\n        getppid()\n    }\n    exit(0)\n}\n"
                   "waitpid(c1)\ngetppid()")
    programs = [orphan, SLEEPY, QUICK, orphan]
    report = check(programs, [predict(p) for p in programs], runner, lanes=4, jobs=1,
                   batch_size=4)
    assert report.runs == 1 and not disagreements(report)

    from conformance import trace
    from conformance.batch import build
    result = runner.run(build(programs, runner.abi, ending=runner.batch_ending, lanes=4).elf, 60)
    parsed = trace.parse(result.output)
    lane_pids = {rec.fields[1] for k in range(4) for rec in parsed.program(k).driver
                 if rec.kind == "G"}
    assert len(lane_pids) == 4 and parsed.driver_pid not in lane_pids


@pytest.mark.parametrize("lane_count", [1, 4])
def test_the_driver_has_one_watch_and_a_few_micro_ops_per_program(lane_count):
    abi = load("linux-aarch64")

    def driver(count):
        return lower_driver(count, abi, 2000, lanes=lanes.plan([QUICK] * count, lane_count))

    small, large = driver(lane_count), driver(lane_count + 100)
    assert sum(getattr(m, "name", "") == "drv_watch" for m in large) == 1
    # a comment, the index, fork, the child's branch, the jump, the label, the way back
    assert (len(large) - len(small)) / 100 <= 7
