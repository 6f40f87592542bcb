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


def test_busy_programs_share_the_first_lane_and_the_rest_are_balanced():
    programs = [SLEEPY, BUSY, QUICK, SLEEPY, BUSY, SLEEPY, QUICK]
    plan = lanes.plan(programs, 3)
    assert plan[0] == [1, 4]
    rest = plan[1:]
    assert sorted(i for lane in rest for i in lane) == [0, 2, 3, 5, 6]
    sleepers = [sum(programs[i] is SLEEPY for i in lane) for lane in rest]
    assert sorted(sleepers) == [1, 2]  # three 150 ms sleepers over two lanes, not 3 + 0


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
