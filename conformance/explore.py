"""Generated programs on targets: Hypothesis draws batches, targets run them, failures shrink.

One Hypothesis example is one batch (one ELF per target): a batch size, then that many
programs. A batch where some program does not agree with the oracle fails the example, and
Hypothesis shrinks it: the batch size towards one, then the failing program towards its
smallest form. Each shrinking step is a real run on the target that failed. Known target
limitations (targets/findings.toml) are not failures.
"""
from __future__ import annotations

import dataclasses
import time
import unittest
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from hypothesis import HealthCheck, Phase, Verbosity, given, seed as hypothesis_seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky

from conformance.check import check
from conformance.compare import AGREES, Verdict
from conformance.findings import KNOWN
from conformance.ir import Program, op_count
from conformance.syntax import format as format_program
from targets.runners import Runner

STATE_DIR = Path(".conformance")
# Hypothesis bounds the choices one example may make; batches of more than about ten
# generated programs overrun it and are silently discarded (measured: 10 -> 97% of examples
# run, 20 -> 10%, 30 -> none), so generated batches stay at this size.
MAX_GENERATED_BATCH = 10
SHRINK_BUDGET_S = 24.0  # Hypothesis's part of shrinking; the deletion pass has no budget
PROFILES = {
    # dev: remember failures in .conformance/ and replay them first next time.
    "dev": dict(database="dir"),
    # ci: the same examples every run, nothing written.
    "ci": dict(database=None, derandomize=True),
    # shared: failures kept in a directory every worker and host reaches (NFS, sshfs), which
    # each run replays first; seeded, since Hypothesis ignores the database when derandomised.
    "shared": dict(database="shared"),
}


class Enough(unittest.SkipTest):
    """Raised once `count` programs are checked; Hypothesis re-raises skips without shrinking."""


@dataclass
class Failure:
    """The smallest failing program found, and how each target judged it."""

    program: Program
    verdicts: dict[str, Verdict]
    ops_before: int
    ops_after: int
    shrink_seconds: float
    flaky: bool = False
    # where shrinking went: Hypothesis's shrinker on the batch, then the deletion pass
    hypothesis_seconds: float = 0.0
    hypothesis_runs: int = 0
    deletion_runs: int = 0


@dataclass
class Exploration:
    """What a generated run did."""

    programs: int = 0
    batches: int = 0
    known: int = 0
    seconds: float = 0.0
    failure: Failure | None = None
    per_target_seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def _without(body: tuple, path: tuple[int, ...]) -> tuple:
    """The body with the op at `path` (indexes through fork bodies) removed."""
    head, rest = path[0], path[1:]
    if not rest:
        return body[:head] + body[head + 1:]
    op = body[head]
    return body[:head] + (dataclasses.replace(op, body=_without(op.body, rest)),) + body[head + 1:]


def _paths(body: tuple, prefix: tuple[int, ...] = ()):
    for i, op in enumerate(body):
        yield prefix + (i,)
        if op.body:
            yield from _paths(op.body, prefix + (i,))


def _at(body: tuple, path: tuple[int, ...]):
    op = body[path[0]]
    return op if len(path) == 1 else _at(op.body, path[1:])


def _names_used(value) -> set[str]:
    """The bound names an operand (or a tuple of them) refers to."""
    from conformance.ir import Group, PollFd, Ref
    if isinstance(value, (Ref, Group)):
        return {value.name}
    if isinstance(value, PollFd):
        return _names_used(value.fd)
    if isinstance(value, tuple):
        return set().union(*map(_names_used, value)) if value else set()
    return set()


def _with_dependents(body: tuple, path: tuple[int, ...]) -> list[tuple[int, ...]]:
    """`path` and every later op that uses a name it (or its fork body) binds, transitively."""
    paths = list(_paths(body))
    doomed = {path}
    bound: set[str] = set()
    for p in paths:
        inside = any(p[:len(d)] == d for d in doomed)
        op = _at(body, p)
        if inside or _names_used(op.args) & bound:
            if not inside:
                doomed.add(p)
            bound |= set(op.binds)
    return sorted(doomed)


def _without_all(body: tuple, doomed: list[tuple[int, ...]]) -> tuple:
    """The body without the ops at `doomed` (outermost first; inner paths of a doomed op go
    with it)."""
    outer = [p for p in doomed if not any(q != p and p[:len(q)] == q for q in doomed)]
    for p in sorted(outer, reverse=True):  # later siblings first keeps earlier indexes valid
        body = _without(body, p)
    return body


def minimise(program: Program, still_fails: Callable[[Program], bool]) -> Program:
    """Greedily delete ops while the program stays valid (it parses back), keeps a single
    allowed outcome, and still fails. Each round first tries an op together with every op
    that uses what it binds (a pipe with its reads and writes), then single ops."""
    from conformance.syntax import ProgramSyntaxError, parse
    from oracle import predict
    tried: set[str] = set()
    hangs = any(o.hung for o in predict(program).outcomes)

    def candidates(body: tuple):
        # halves, quarters, ... of the top level first (each with its dependents): most ops of
        # a random program have nothing to do with its failure
        size = len(body) // 2
        while size >= 2:
            for start in range(0, len(body), size):
                group = set()
                for i in range(start, min(start + size, len(body))):
                    group.update(_with_dependents(body, (i,)))
                yield _without_all(body, sorted(group))
            size //= 2
        paths = list(_paths(body))
        for path in paths:
            group = _with_dependents(body, path)
            if len(group) > 1:
                yield _without_all(body, group)
        for path in paths:
            yield _without(body, path)

    changed = True
    while changed:
        changed = False
        for candidate_body in candidates(program.body):
            if not candidate_body:
                continue
            candidate = dataclasses.replace(program, body=candidate_body)
            try:
                candidate = dataclasses.replace(parse(format_program(candidate)), name=program.name)
            except ProgramSyntaxError:
                continue  # deleting it unbinds a name a later op uses
            text = format_program(candidate)
            if text in tried:
                continue
            tried.add(text)
            outcomes = predict(candidate).outcomes
            if len(outcomes) != 1 or (outcomes[0].hung and not hangs):
                continue  # a new hang costs a whole watchdog period and shows nothing new
            if not still_fails(candidate):
                continue
            program, changed = candidate, True
            break
    return program


def _fail(message: str) -> None:
    """Fail the example. One raise site: Hypothesis tells failures apart by where they are
    raised, and a spent shrink budget must look like the failure being shrunk."""
    raise AssertionError(message)


def explore(runners: Sequence[Runner], *, count: int, family: str = "all", batch_size: int = 50,
            max_ops: int = 20, profile: str = "dev", seed: int | None = None,
            database_dir: str | None = None,
            oracle_profile=None, watchdog_ms: int = 2000, faults=None,
            hypothesis_shrink_seconds: float = SHRINK_BUDGET_S,
            progress: Callable[[Exploration], None] | None = None) -> Exploration:
    """Check about `count` generated programs on `runners`; shrink the first failure.

    `batch_size` is capped at MAX_GENERATED_BATCH. (To measure agreement over many programs
    without shrinking as they come, see conformance.survey.)

    Shrinking: Hypothesis's shrinker works on the failing batch for at most
    `hypothesis_shrink_seconds` (each step is a real run). After that every candidate it
    proposes is declared failing without a run, so that it stops at once; only programs that
    really failed are kept, and the deletion pass (`minimise`, real runs) goes on from the last
    of them. `profile` is a key of PROFILES; "shared" keeps failures in `database_dir`.
    """
    batch_size = max(1, min(batch_size, MAX_GENERATED_BATCH))
    from conformance.lower import NO_FAULTS
    from generators import programs as program_strategy
    from oracle import LINUX, predict
    oracle_profile = oracle_profile or LINUX
    faults = faults or NO_FAULTS
    state = Exploration()
    start = time.monotonic()
    failing: dict[str, object] = {}  # once a target fails, shrinking runs only that one
    first_failure: dict[str, object] = {}
    predictions: dict[str, object] = {}
    agreed: set[tuple[str, str]] = set()  # (target, program text) seen to agree

    def expectation(p: Program):
        key = format_program(p)
        if key not in predictions:
            predictions[key] = predict(p, oracle_profile)
        return predictions[key]

    @st.composite
    def batches(draw):
        size = draw(st.integers(min_value=1, max_value=batch_size))
        return draw(st.lists(program_strategy(family=family, max_ops=max_ops),
                             min_size=size, max_size=size))

    options = dict(PROFILES[profile])
    database = options.pop("database")
    if database == "dir":
        database = DirectoryBasedExampleDatabase(str(STATE_DIR / "hypothesis"))
    elif database == "shared":
        if not database_dir:
            raise ValueError("the shared profile needs database_dir (a directory every worker "
                             "reaches)")
        database = DirectoryBasedExampleDatabase(database_dir)
    # sizes are drawn in 1..batch_size, so about batch_size/2 programs per example; twice
    # that many examples leaves room for discarded ones (Enough ends the run early)
    config = settings(max_examples=2 * max(1, -(-count * 2 // batch_size)) + 10, deadline=None,
                      database=database, derandomize=options.get("derandomize", False),
                      suppress_health_check=list(HealthCheck), print_blob=False,
                      verbosity=Verbosity.quiet,
                      phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])

    def run_batch(batch: list[Program]) -> None:
        if not failing and state.programs >= count:
            raise Enough()  # Hypothesis lets a skip through at once: no more examples
        if failing and time.monotonic() - first_failure["at"] > hypothesis_shrink_seconds:
            return _fail("shrink budget spent")  # not run; nothing of it is kept
        if failing:
            first_failure["runs"] = first_failure.get("runs", 0) + 1
        chosen = [r for r in runners if not failing or r.name in failing]
        bad: list[tuple[str, Verdict]] = []
        for runner in chosen:
            # While shrinking, a program that already agreed on this target is not run again:
            # most candidates change one program of the batch.
            todo = [p for p in batch if not failing
                    or (runner.name, format_program(p)) not in agreed]
            if not todo:
                continue
            expected = [expectation(p) for p in todo]
            t0 = time.monotonic()
            report = check(todo, expected, runner, batch_size=len(todo), watchdog_ms=watchdog_ms,
                           faults=faults)
            agreed.update((runner.name, format_program(v.program)) for v in report.verdicts
                          if v.status in (AGREES, KNOWN))
            state.per_target_seconds[runner.name] = (state.per_target_seconds.get(runner.name, 0.0)
                                                     + time.monotonic() - t0)
            state.known += sum(1 for v in report.verdicts if v.status == KNOWN)
            counts = state.counts.setdefault(runner.name, {})
            for v in report.verdicts:
                counts[v.status] = counts.get(v.status, 0) + 1
            bad += [(runner.name, v) for v in report.verdicts if v.status not in (AGREES, KNOWN)]
        if not failing:
            state.programs += len(batch)
            state.batches += 1
            if progress:
                state.seconds = time.monotonic() - start
                progress(state)
        if bad:
            target, verdict = bad[0]
            failing.setdefault(target, True)
            first_failure.setdefault("ops", op_count(verdict.program))
            first_failure.setdefault("at", time.monotonic())
            first_failure["last"] = (verdict.program, {t: v for t, v in bad if v.program == verdict.program})
            _fail(f"{target}: {verdict.program.name or 'program'}: {verdict.detail}")

    test = given(batches())(run_batch)
    test = config(test)
    if seed is not None:
        test = hypothesis_seed(seed)(test)
        if database is not None:
            # @seed switches the database off; a shared one is the point of the profile, and
            # a seeded shard still reads and writes it (Hypothesis keys it by the test's source).
            test._hypothesis_internal_use_settings = settings(
                test._hypothesis_internal_use_settings, database=database)
    flaky = False
    try:
        test()
    except (AssertionError, Enough, ExceptionGroup):
        pass
    except Flaky:
        flaky = True
    state.seconds = time.monotonic() - start
    if "last" in first_failure:
        program, verdicts = first_failure["last"]
        target = next(r for r in runners if r.name in verdicts)
        hypothesis_seconds = time.monotonic() - first_failure["at"]
        deletion_runs = 0

        def still_fails(candidate: Program) -> bool:
            nonlocal deletion_runs
            deletion_runs += 1
            report = check([candidate], [expectation(candidate)], target, watchdog_ms=watchdog_ms,
                           faults=faults)
            verdict = report.verdicts[0]
            if verdict.status in (AGREES, KNOWN):
                return False
            verdicts_seen[target.name] = verdict
            return True

        verdicts_seen: dict[str, Verdict] = {}
        if not flaky:
            smaller = minimise(program, still_fails)
            if smaller is not program:
                program, verdicts = smaller, {target.name: verdicts_seen[target.name]}
        state.failure = Failure(program, verdicts, first_failure["ops"], op_count(program),
                                time.monotonic() - first_failure["at"], flaky,
                                hypothesis_seconds, first_failure.get("runs", 0), deletion_runs)
    return state
