"""benchmarks/throughput.py: argument handling and helpers (never its wall-clock figures)."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.batch import BatchTooLarge
from conformance.ir import op_count
from oracle import predict

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "throughput.py"
# benchmarks/ is not a package; dataclasses needs the module registered while it loads.
_spec = importlib.util.spec_from_file_location("benchmarks_throughput", _PATH)
throughput = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(throughput)


def test_defaults():
    args = throughput.parse_args(["--targets", "x86_64-native"])
    assert (args.repeat, args.generated, args.per_size, args.stream) == (3, 200, 50, 1000)
    assert args.sizes == (5, 10, 20, 50)
    assert args.family == "all" and args.max_ops == 20
    assert [r.name for r in args.runners] == ["x86_64-native"]


def test_quick_sets_small_values_unless_given():
    args = throughput.parse_args(["--quick"])
    assert (args.repeat, args.generated, args.per_size, args.stream) == (1, 40, 10, 200)
    args = throughput.parse_args(["--quick", "--repeat", "2", "--generated", "0"])
    assert (args.repeat, args.generated, args.per_size) == (2, 0, 10)


@pytest.mark.parametrize("argv", [
    ["--sizes", "5,x"], ["--sizes", "0,5"], ["--sizes", ""], ["--repeat", "0"],
    ["--per-size", "0"], ["--generated", "-1"], ["--stream", "-1"], ["--family", "nope"], ["--targets", "vax-native"],
])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        throughput.parse_args(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_sizes():
    assert throughput.positive_ints("50") == (50,)
    assert throughput.positive_ints("5,10,20") == (5, 10, 20)


def test_halving_until_the_batch_fits():
    tried = []

    def attempt(size):
        tried.append(size)
        if size > 30:
            raise BatchTooLarge(f"batch of {size} programs is too large (9 bytes): split it")
        return "built"

    assert throughput.halving(attempt, 100) == (25, "built")
    assert tried == [100, 50, 25]


def test_halving_lets_other_errors_and_single_programs_through():
    def other(size):
        raise ValueError("a batch needs at least one program")

    def never(size):
        raise BatchTooLarge("batch of 1 programs is too large")

    with pytest.raises(ValueError, match="at least one"):
        throughput.halving(other, 8)
    with pytest.raises(ValueError, match="too large"):
        throughput.halving(never, 8)


def test_chunks_and_growth():
    assert throughput.chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert throughput.growth([1.0, 2.0, 0.0], [3.0, 2.0, 1.0]) == ["x3.0", "x1.0", "n/a"]


def test_growth_compares_fewest_and_most_ops_not_the_max_ops_order():
    points = [(5, 3.6, "a"), (20, 13.3, "b"), (50, 9.8, "c")]
    assert throughput.smallest_and_largest(points) == ((5, 3.6, "a"), (20, 13.3, "b"))


def test_op_count_includes_fork_bodies(parse):
    program = parse("""
        c = fork {
            getpid()
            exit(0)
        }
        waitpid(c)
    """)
    assert op_count(program) == 4


def test_table_aligns_columns():
    lines = throughput.table(["set", "n"], [["corpus", "5"], ["g", "120"]]).splitlines()
    assert lines == ["set       n", "------  ---", "corpus    5", "g       120"]


def test_draws_are_deterministic_and_single_outcome():
    first = throughput.draw_programs(8, family="pipes", max_ops=5)
    again = throughput.draw_programs(8, family="pipes", max_ops=5)
    assert first == again and len(first) == 8
    assert all(len(predict(p).outcomes) == 1 for p in first)
    assert all(op_count(p) <= 5 for p in first)
    assert throughput.draw_programs(0, family="all", max_ops=5) == []


def test_a_stream_row_counts_every_program_it_drew():
    from tests.e2e import runner_or_skip
    runner = runner_or_skip("x86_64-native")
    row = throughput.measure_stream(12, runner, family="pipes", max_ops=6, seed=0, jobs=2)
    name, count, distinct, _, _, after_boot, _, agree = row
    assert (name, count, after_boot, agree) == ("x86_64-native", "12", "-", "12/12")
    assert 1 <= int(distinct) <= 12


def test_stages_prints_every_stage_and_the_cpu_ceiling():
    from tests.e2e import runner_or_skip
    runner_or_skip("x86_64-native")
    stages = _PATH.parent / "stages.py"
    out = subprocess.run([sys.executable, str(stages), "--programs", "6"], capture_output=True,
                         text=True, timeout=300, cwd=_PATH.parent.parent, check=True).stdout
    assert re.search(r"^6 programs on x86_64-native, .*; \d busy-wait:$", out, re.M), out
    for stage in ("draw", "oracle", "lower", "emit", "assemble", "run", "parse", "judge"):
        assert re.search(rf"^  {stage} +[0-9.]+ ms/program, +[0-9.]+ ms of CPU$", out, re.M), \
            (stage, out)
    ceiling = re.search(r"CPU ceiling on (\d+) cores: (\d+) programs/s drawn and checked "
                        r"\(([0-9.]+) ms of CPU each\), (\d+)/s checked when drawn beforehand",
                        out)
    assert ceiling, out
    cores, drawn, cpu_ms, checked = ceiling.groups()
    # drawing costs CPU too: the ceiling without it is the higher one
    assert int(checked) > int(drawn) > 0 and float(cpu_ms) > 0


def test_build_prints_the_cost_of_each_abi():
    script = _PATH.parent / "build.py"
    out = subprocess.run([sys.executable, str(script), "--programs", "4", "--batch", "2",
                          "--repeat", "1"], capture_output=True, text=True, timeout=300,
                         cwd=_PATH.parent.parent, check=True).stdout
    assert out.startswith("4 programs (seed 0), batches of 2\n"), out
    for abi in ("linux-x86_64", "linux-aarch64"):
        assert re.search(rf"^  {abi} +[0-9.]+ ms of CPU/program, +\d+ lines assembled/program, "
                         r"+\d+ image bytes/program$", out, re.M), (abi, out)
    bad = subprocess.run([sys.executable, str(script), "--batch", "0"], capture_output=True,
                         text=True, timeout=60, cwd=_PATH.parent.parent)
    assert bad.returncode == 2 and "--batch must be >= 1" in bad.stderr
