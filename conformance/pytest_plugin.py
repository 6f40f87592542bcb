"""pytest plugin: generated-program conformance runs as test items.

    pytest --conformance-target aarch64-qemu-user --conformance-family signals
    pytest -m conformance --conformance-target best:aarch64 --conformance-count 300

One item per (target, family), or per (target, family, seed) with `--conformance-seeds 1-8`,
which is how pytest-xdist shares a run out to local workers or remote hosts. An item runs that many generated programs on the target
(batched, judged against the oracle); a divergence fails it with the shrunk program and the
path of its reproducer bundle. JUnit XML gets the target, ISA, family, seed and bundle as
properties. `best:ISA` picks the first available target of that ISA and says which.
"""
from __future__ import annotations

from pathlib import Path

import pytest

BEST_ORDER = ("native", "qemu-user", "linux-vm")  # first available wins (fastest first) for best:ISA


def pytest_addoption(parser):
    group = parser.getgroup("conformance", "generated-program conformance runs")
    group.addoption("--conformance-target", action="append", default=[],
                    help="target name, or best:ISA (repeatable; comma-separated allowed)")
    group.addoption("--conformance-family", action="append", default=[],
                    help="program family (repeatable; default: all)")
    group.addoption("--conformance-count", type=int, default=200,
                    help="generated programs per item (default 200)")
    group.addoption("--conformance-seed", type=int, default=0, help="Hypothesis seed (default 0)")
    group.addoption("--conformance-seeds", default="",
                    help="a seed range (1-8) or list (1,5,9): one item per seed, so pytest-xdist "
                         "(-n N, or --tx ssh=HOST) shares them out")
    group.addoption("--conformance-db", default="",
                    help="a Hypothesis example database directory that every worker and host "
                         "reaches (NFS, sshfs): failures are kept there and replayed first by "
                         "every later run (default: none, derandomised)")
    group.addoption("--conformance-inject-fault", default="",
                    help="a deliberate bug in the emitted code, as `conformance run "
                         "--inject-fault` takes it (to see failures travel)")
    group.addoption("--conformance-bundles", default=".conformance/bundles",
                    help="where reproducer bundles go")


def pytest_configure(config):
    config.addinivalue_line("markers", "conformance: a generated-program conformance run")


def _split(values: list[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def resolve(name: str):
    """(runner or None, why not): `best:ISA` picks the first available target of that ISA."""
    from targets.runners import get, known
    if name.startswith("best:"):
        isa = name.split(":", 1)[1]
        candidates = [r for kind in BEST_ORDER for r in known()
                      if r.isa == isa and r.name.endswith(kind)]
        if not candidates:
            return None, f"no target of ISA {isa!r}"
        reasons = []
        for runner in candidates:
            why = runner.unavailable()
            if why is None:
                return runner, ""
            reasons.append(f"{runner.name}: {why}")
        return None, "; ".join(reasons)
    runner = get(name)
    why = runner.unavailable()
    return (None, f"{why} (enable: {runner.enable})") if why else (runner, "")


class ConformanceFailure(Exception):
    """A generated program that did not agree with the oracle."""


class ConformanceItem(pytest.Item):
    """Generated programs of one family on one target."""

    def __init__(self, *, target: str, family: str, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.target, self.family, self.seed = target, family, seed
        self.add_marker(pytest.mark.conformance)

    def runtest(self):
        from conformance import bundle
        from conformance.explore import explore
        from oracle import predict
        runner, why = resolve(self.target)
        if runner is None:
            pytest.skip(f"target {self.target} not available: {why}")
        config = self.config
        seed = self.seed if self.seed is not None else config.getoption("conformance_seed")
        for key, value in (("target", runner.name), ("isa", runner.isa), ("family", self.family),
                           ("seed", seed)):
            self.user_properties.append((key, value))
        if self.target.startswith("best:"):
            print(f"{self.target} ran on {runner.name} ({runner.version()})")
        database = config.getoption("conformance_db")
        result = explore([runner], count=config.getoption("conformance_count"), family=self.family,
                         profile="shared" if database else "ci", database_dir=database or None,
                         seed=seed, faults=_faults(config.getoption("conformance_inject_fault")))
        self.user_properties.append(("programs", result.programs))
        failure = result.failure
        if failure is None:
            return
        path = bundle.write(failure.program, predict(failure.program), failure.verdicts,
                            Path(config.getoption("conformance_bundles")))
        self.user_properties.append(("bundle", str(path)))
        from conformance.syntax import format as format_program
        # the program itself too: with remote workers the bundle stays on the worker's disk,
        # the report (and JUnit XML) reaches the controller
        self.user_properties.append(("program", format_program(failure.program)))
        details = "\n".join(f"{t}: {v.status}: {v.detail}" for t, v in failure.verdicts.items())
        raise ConformanceFailure(
            f"{details}\n\nshrunk from {failure.ops_before} to {failure.ops_after} ops"
            f"{' (FLAKY)' if failure.flaky else ''}:\n{format_program(failure.program)}\n"
            f"reproducer bundle: {path}\nrerun it: conformance replay {path}")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return Path("conformance"), None, self.name


def pytest_collection_modifyitems(session, config, items):
    targets = _split(config.getoption("conformance_target"))
    if not targets:
        return
    families = _split(config.getoption("conformance_family")) or ["all"]
    from generators import FAMILIES
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise pytest.UsageError(f"--conformance-family {unknown[0]!r} is not a family "
                                f"(known: {', '.join(FAMILIES)})")
    seeds = _seeds(config.getoption("conformance_seeds"))
    for target in targets:
        for family in families:
            for seed in seeds or [None]:
                name = f"conformance[{target}-{family}" + (f"-seed{seed}]" if seed is not None else "]")
                items.append(ConformanceItem.from_parent(session, name=name, target=target,
                                                         family=family, seed=seed))


def _seeds(spec: str) -> list[int]:
    """`1-8` or `1,5,9` as seeds; a usage error otherwise."""
    if not spec:
        return []
    try:
        if "-" in spec:
            low, high = (int(x) for x in spec.split("-", 1))
            if high < low:
                raise ValueError
            return list(range(low, high + 1))
        return [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise pytest.UsageError(f"--conformance-seeds {spec!r}: expected a range like 1-8 or a "
                                "list like 1,5,9") from None


def _faults(spec: str):
    """--conformance-inject-fault as `conformance run --inject-fault` reads it."""
    from conformance.cli import UsageError, parse_faults
    try:
        return parse_faults(spec)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
