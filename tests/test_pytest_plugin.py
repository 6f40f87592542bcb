"""The pytest plugin: items per (target, family), skips with reasons, usage errors."""
from __future__ import annotations

import pytest

from e2e import runner_or_skip

pytestmark = pytest.mark.e2e


def run(pytester, *args):
    pytester.makepyfile(test_nothing="def test_unit(): pass\n")
    # installed (pip install -e), the plugin loads by its entry point; from a bare checkout, by -p
    installed = pytester._request.config.pluginmanager.has_plugin("conformance")
    load = [] if installed else ["-p", "conformance.pytest_plugin"]
    return pytester.runpytest_inprocess(*load, "-m", "conformance", *args)


def test_one_item_per_target_and_family_and_junit_properties(pytester):
    runner_or_skip("x86_64-native")
    result = run(pytester, "--conformance-target", "x86_64-native",
                 "--conformance-family", "pipes,process", "--conformance-count", "10",
                 "--junitxml", "out.xml", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*conformance[[]x86_64-native-pipes[]]*PASSED*",
                                 "*conformance[[]x86_64-native-process[]]*PASSED*"])
    xml = (pytester.path / "out.xml").read_text()
    assert '<property name="target" value="x86_64-native" />' in xml
    assert '<property name="family" value="process" />' in xml


def test_an_absent_target_skips_with_the_reason(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run(pytester, "--conformance-target", "best:aarch64", "--conformance-count", "5", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*target best:aarch64 not available*qemu-aarch64 is not on PATH*"])


def test_an_unknown_family_is_a_usage_error(pytester):
    result = run(pytester, "--conformance-target", "x86_64-native", "--conformance-family", "signal")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--conformance-family 'signal' is not a family*"])


def test_seed_shards_are_shared_out_by_xdist_workers(pytester):
    """--conformance-seeds makes one item per seed; pytest-xdist runs them on two workers and
    the controller gets every result and property."""
    pytest.importorskip("xdist", reason="pytest-xdist is not installed (pip install pytest-xdist)")
    runner_or_skip("x86_64-ref")
    pytester.makepyfile(test_nothing="def test_unit(): pass\n")
    installed = pytester._request.config.pluginmanager.has_plugin("conformance")
    load = [] if installed else ["-p", "conformance.pytest_plugin"]
    result = pytester.runpytest_subprocess(
        *load, "-m", "conformance", "-n", "2", "-v", "--conformance-target", "x86_64-ref",
        "--conformance-family", "pipes,signals", "--conformance-seeds", "1-2",
        "--conformance-count", "5", "--junitxml", "out.xml")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*gw0*", "*gw1*"], consecutive=False)
    xml = (pytester.path / "out.xml").read_text()
    for seed in ("1", "2"):
        assert f'<property name="seed" value="{seed}" />' in xml


def test_failures_found_by_workers_land_in_the_shared_database(pytester, tmp_path):
    """Two xdist workers find a seeded bug (the handler corrupts saved rbx), write the shrunk
    failure into one shared example database, and a later run on the controller replays it
    from there: the failing program comes back without generating afresh."""
    pytest.importorskip("xdist", reason="pytest-xdist is not installed (pip install pytest-xdist)")
    runner_or_skip("x86_64-ref")
    pytester.makepyfile(test_nothing="def test_unit(): pass\n")
    installed = pytester._request.config.pluginmanager.has_plugin("conformance")
    load = [] if installed else ["-p", "conformance.pytest_plugin"]
    shared = tmp_path / "hypothesis-db"
    common = [*load, "-m", "conformance", "-v", "--conformance-target", "x86_64-ref",
              "--conformance-family", "registers", "--conformance-count", "20",
              "--conformance-inject-fault", "corrupt-saved-register=rbx",
              "--conformance-db", str(shared)]
    result = pytester.runpytest_subprocess(*common, "-n", "2", "--conformance-seeds", "1-2")
    result.assert_outcomes(failed=2)
    saved = [p for p in shared.rglob("*") if p.is_file()]
    assert saved, "no worker wrote to the shared database"
    # Seed 3 with one program does not meet the bug on its own (an empty database: passes);
    # with the database the workers filled, the stored failure is replayed first and fails.
    alone = [*common[:-1], str(tmp_path / "empty-db"), "--conformance-seeds", "3",
             "--conformance-count", "1"]
    pytester.runpytest_subprocess(*alone).assert_outcomes(passed=1)
    again = pytester.runpytest_subprocess(*common, "--conformance-seeds", "3",
                                          "--conformance-count", "1")
    again.assert_outcomes(failed=1)


def test_a_bad_seed_range_is_a_usage_error(pytester):
    result = run(pytester, "--conformance-target", "x86_64-ref", "--conformance-seeds", "5-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--conformance-seeds '5-1': expected a range like 1-8*"])
