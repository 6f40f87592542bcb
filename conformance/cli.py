"""The `conformance` command.

Exit status: 0 everything agreed (or the command succeeded), 1 some program did not agree with
the oracle on some target, 2 bad input (usage, program text, unknown target or ABI, an ELF the
target cannot run), 3 a target that was asked for by name is not available here.
"""
from __future__ import annotations

import argparse
import sys

import time
from pathlib import Path

from conformance.syntax import format as format_program

EXIT_OK, EXIT_DIVERGED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
BUILTIN_CORPORA = Path(__file__).parent / "corpus"


class UsageError(Exception):
    """Bad input from the user: printed as one `error:` line, exit status 2."""

    status = EXIT_USAGE


class Unavailable(UsageError):
    """A named target cannot run here: exit status 3."""

    status = EXIT_UNAVAILABLE


def builtin_corpora() -> list[str]:
    """Names of the corpora shipped with the suite."""
    return sorted(p.name for p in BUILTIN_CORPORA.iterdir() if p.is_dir() and any(p.glob("*.prog")))


def load_corpus(spec: str):
    """Programs from a .prog file, a directory of them, a built-in corpus name, or `all`."""
    import dataclasses
    from conformance.syntax import ProgramSyntaxError, parse_file
    if spec == "all":
        return [dataclasses.replace(p, name=f"{name}/{p.name}")
                for name in builtin_corpora() for p in load_corpus(name)]
    path = Path(spec)
    if not path.exists():
        builtin = BUILTIN_CORPORA / Path(spec).name
        if builtin.is_dir():
            path = builtin
        else:
            known = ", ".join(builtin_corpora() + ["all"])
            raise UsageError(f"no corpus {spec!r}: not a file or directory, nor a built-in "
                             f"corpus (built-in: {known})")
    files = sorted(path.glob("*.prog")) if path.is_dir() else [path]
    if not files:
        raise UsageError(f"{spec}: no .prog files in it")
    try:
        return [parse_file(f) for f in files]
    except ProgramSyntaxError as exc:
        raise UsageError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{spec}: {exc}") from None


def _abi_for(args):
    from targets.tables import AbiError, load
    name = args.abi or f"linux-{args.isa}"
    try:
        return load(name)
    except AbiError as exc:
        raise UsageError(str(exc)) from None


def _one_program(path: str):
    programs = load_corpus(path)
    if len(programs) != 1:
        raise UsageError(f"{path}: expected one program, found {len(programs)}")
    return programs[0]


def cmd_targets(args) -> int:
    from targets.runners import known
    from targets.runners.sandbox import namespace_unavailable
    for runner in known():
        why = runner.unavailable()
        config = getattr(runner, "config", None)
        mark = " [example config, untested here]" if config is not None and not config.tested else ""
        if why:
            print(f"{runner.name:27} not available: {why}; enable: {runner.enable or '-'}{mark}")
        else:
            print(f"{runner.name:27} available: {runner.version()}")
    ns = namespace_unavailable()
    print("sandbox: " + ("user+pid namespace" if ns is None else
                         f"NONE ({ns}); programs that could signal foreign processes are refused"))
    return EXIT_OK


def _enable(runner) -> str:
    """` (enable: COMMAND)` when the target says how it is enabled."""
    return f" (enable: {runner.enable})" if runner.enable else ""


def _select_targets(spec: str | None):
    from targets.runners import DEFAULT_TARGETS, TargetError, get
    names = [n.strip() for n in spec.split(",") if n.strip()] if spec else list(DEFAULT_TARGETS)
    if spec is not None and not names:
        raise UsageError("--targets is empty")
    runners, not_run = [], {}
    for name in names:
        try:
            runner = get(name)
        except TargetError as exc:
            raise UsageError(str(exc)) from None
        why = runner.unavailable()
        if why is None:
            runners.append(runner)
        elif spec is not None:
            raise Unavailable(f"target {name} is not available: {why}" + _enable(runner))
        else:
            not_run[name] = f"{why}; enable: {runner.enable}"
    if spec is None:
        # An ISA no default target can run here is still checked, on the reference machine.
        for isa in ("x86_64", "aarch64"):
            ref = get(f"{isa}-ref")
            if not any(r.isa == isa for r in runners) and ref.unavailable() is None:
                runners.append(ref)
                print(f"{isa}: no other target available here; running {ref.name} (the "
                      "reference machine: unicorn + the oracle's kernel model)", file=sys.stderr)
    if not runners:
        raise Unavailable("no target is available here; see `conformance targets`")
    return runners, not_run


def cmd_run(args) -> int:
    from conformance import report
    from conformance.lower import Faults
    from conformance.check import check
    from oracle import PROFILES, predict
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.lanes is not None and args.lanes < 1:
        raise UsageError(f"--lanes must be at least 1, got {args.lanes}")
    if args.watchdog_ms < 50:
        raise UsageError(f"--watchdog-ms must be at least 50, got {args.watchdog_ms}")
    runners, not_run = _select_targets(args.targets)
    faults = parse_faults(args.inject_fault) or Faults()
    if faults.sigreturn_skips and args.inject_signal_at is None:
        raise UsageError("--inject-fault sigreturn-skips=REG breaks the reference machine's "
                         "sigreturn: use it with --inject-signal-at")
    for kind, register in (("corrupt-saved-register", faults.corrupt_saved_register),
                           ("sigreturn-skips", faults.sigreturn_skips)):
        for runner in runners if register else []:
            if register not in runner.abi.frame_gregs:
                raise UsageError(f"--inject-fault {kind}={register}: {runner.name} "
                                 f"({runner.abi.name}) saves no such register (known: "
                                 f"{', '.join(runner.abi.frame_gregs)})")
    if args.inject_signal_at is not None:
        return _run_injection(args, runners)
    if args.generate is not None:
        return _run_generated(args, runners, not_run)
    programs = load_corpus(args.corpus)
    if faults.die_after and faults.die_after not in {p.name for p in programs}:
        raise UsageError(f"--inject-fault die-after={faults.die_after}: no program of that name "
                         f"in the corpus (e.g. {programs[min(4, len(programs) - 1)].name})")
    profile = PROFILES[args.profile]
    quiet = args.json
    start = time.monotonic()
    expected = [predict(p, profile) for p in programs]
    if not quiet:
        print(f"oracle ({profile.name} profile): {len(programs)} programs predicted in "
              f"{time.monotonic() - start:.2f} s", file=sys.stderr)
    reports = []
    for runner in runners:
        started = time.monotonic()

        def progress(done, total, bad, name=runner.name, started=started):
            if not quiet:
                rate = done / max(time.monotonic() - started, 1e-9)
                print(f"  {name}: {done}/{total} programs, {rate:.1f}/s, {bad} not agreeing so far",
                      file=sys.stderr)
        reports.append(check(programs, expected, runner, batch_size=args.batch_size,
                             watchdog_ms=args.watchdog_ms, progress=progress, reruns=args.reruns,
                             faults=faults, jobs=args.jobs, lanes=args.lanes))
    if args.json:
        print(report.as_json(programs, reports, not_run))
    else:
        print(report.table(programs, reports, not_run, show_all=args.all))
    return EXIT_DIVERGED if report.failed(reports) else EXIT_OK


def _injection_spacing(args, runners) -> int:
    """--inject-signal-at as a step (every: 1); usage errors for what it cannot run with."""
    from targets.runners.reference import ReferenceRunner
    spec = args.inject_signal_at
    if not (spec == "every" or spec.isdigit() and int(spec) > 0):
        raise UsageError(f"--inject-signal-at must be 'every' or a positive number, got {spec!r}")
    others = [r.name for r in runners if not isinstance(r, ReferenceRunner)]
    if args.targets is None or others:
        raise UsageError("--inject-signal-at runs on the reference machine only: name its "
                         "targets with --targets x86_64-ref,aarch64-ref"
                         + (f" (not {', '.join(others)})" if args.targets else ""))
    if args.generate is not None:
        raise UsageError("--inject-signal-at sweeps --corpus programs, not --generate ones")
    for runner in runners:
        if args.inject_signal not in runner.abi.signals:
            raise UsageError(f"--inject-signal {args.inject_signal!r}: {runner.abi.name} has no "
                             "such signal (e.g. SIGUSR1)")
    return 1 if spec == "every" else int(spec)


def _run_injection(args, runners) -> int:
    """`run --inject-signal-at`: a signal at every (or every Nth) instruction of each program's
    ops, one run per point, on the reference machine (targets/runners/reference/inject.py)."""
    from conformance.lower import NO_FAULTS
    from targets.runners.reference.inject import describe, sweep
    every = _injection_spacing(args, runners)
    programs = load_corpus(args.corpus)
    faults = parse_faults(args.inject_fault) or NO_FAULTS
    skips = (faults.sigreturn_skips,) if faults.sigreturn_skips else ()
    swept = points = unsweepable = failed = 0
    for runner in runners:
        for program in programs:
            result = sweep(program, runner.abi, args.inject_signal, every=every,
                           faults=faults, sigreturn_skips=skips)
            print("\n".join(describe(result, runner.name)), flush=True)
            swept += not result.not_sweepable
            unsweepable += bool(result.not_sweepable)
            points += result.swept
            failed += bool(result.breaks) or result.baseline not in ("", "agrees")
    print(f"{swept} program runs swept ({points} injection points), {unsweepable} not "
          f"sweepable, {failed} broke the invariant or disagreed with the oracle uninjected")
    return EXIT_DIVERGED if failed else EXIT_OK


def _run_generated(args, runners, not_run) -> int:
    """`run --generate N`: Hypothesis programs, shrinking, a reproducer bundle on failure."""
    from hypothesis.errors import InvalidArgument
    from conformance import bundle
    from conformance.explore import explore
    from oracle import PROFILES, predict
    if args.generate < 1:
        raise UsageError(f"--generate must be at least 1, got {args.generate}")
    if args.keep_going:
        return _survey_generated(args, runners, not_run)
    for name, why in not_run.items():
        print(f"{name}: not run ({why})")

    def progress(state):
        rate = state.programs / max(state.seconds, 1e-9)
        print(f"  {state.programs}/{args.generate} programs, {state.batches} batches, "
              f"{rate:.1f} programs/s, {state.known} known-limitation verdicts", file=sys.stderr)

    try:
        result = explore(runners, count=args.generate, family=args.family,
                         batch_size=args.batch_size, max_ops=args.max_ops,
                         profile=args.hypothesis_profile, seed=args.seed,
                         oracle_profile=PROFILES[args.profile], watchdog_ms=args.watchdog_ms,
                         faults=parse_faults(args.inject_fault), progress=progress)
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from None
    targets = ", ".join(r.name for r in runners)
    print(f"{result.programs} generated programs ({args.family}) in {result.batches} batches on "
          f"{targets}: {result.seconds:.1f} s")
    failure = result.failure
    if failure is None:
        print("every program agreed with the oracle (or diverged only in documented ways: "
              f"{result.known} known-limitation verdicts)")
        return EXIT_OK
    where = ", ".join(f"{t}: {v.status}: {v.detail}" for t, v in failure.verdicts.items())
    kind = "FLAKY (did not reproduce while shrinking)" if failure.flaky else "divergence"
    print(f"{kind}, shrunk from {failure.ops_before} to {failure.ops_after} ops in "
          f"{failure.shrink_seconds:.1f} s (Hypothesis {failure.hypothesis_seconds:.1f} s, "
          f"{failure.hypothesis_runs} runs; deletion pass {failure.deletion_runs} runs): {where}")
    expected = predict(failure.program, PROFILES[args.profile])
    verdicts = dict(failure.verdicts)
    if args.reruns and not failure.flaky:
        from conformance.check import check
        from conformance.lower import NO_FAULTS
        for runner in runners:
            if runner.name in verdicts:
                again = check([failure.program], [expected], runner, watchdog_ms=args.watchdog_ms,
                              faults=parse_faults(args.inject_fault) or NO_FAULTS,
                              reruns=args.reruns).verdicts[0]
                verdicts[runner.name] = again
                print(f"stability on {runner.name}: {again.stability or 'agreed when rerun'}"
                      f" ({again.detail.rsplit('[', 1)[-1].rstrip(']') if again.stability else ''})")
    try:
        path = bundle.write(failure.program, expected, verdicts, Path(args.bundles),
                            note=f"shrunk from {failure.ops_before} ops; {where}",
                            faults=parse_faults(args.inject_fault))
    except OSError as exc:  # a full disk must not lose the finding: print it whole instead
        print(f"reproducer bundle NOT written to {args.bundles}: {exc.strerror or exc}")
        print(format_program(failure.program))
        return EXIT_DIVERGED
    print(f"reproducer bundle: {path}\nrerun it: conformance replay {path}")
    print((path / "program.prog").read_text())
    return EXIT_DIVERGED


def _survey_generated(args, runners, not_run) -> int:
    """`run --generate N --keep-going`: a fixed sample in large batches, every cause shrunk."""
    from hypothesis.errors import InvalidArgument
    from conformance import report
    from conformance.lower import NO_FAULTS
    from conformance.supply import Supply
    from conformance.survey import survey
    from oracle import PROFILES, predict
    profile = PROFILES[args.profile]
    quiet = args.json
    try:
        supply = Supply(args.generate, family=args.family, max_ops=args.max_ops,
                        seed=args.seed, profile_name=args.profile)
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from None
    if not quiet:
        print(f"drawing and predicting {args.generate} programs ({args.family}, at most "
              f"{args.max_ops} ops, seed {supply.seed}) in {supply.workers} worker processes, "
              "while the first target checks them", file=sys.stderr)

    def progress(name, done, total, bad, seconds):
        if not quiet:
            rate = done / max(seconds, 1e-9)
            print(f"  {name}: {done}/{total} programs, {rate:.1f}/s, {bad} not agreeing so far",
                  file=sys.stderr)
    with supply:
        result = survey(supply, supply.expected, runners, batch_size=args.batch_size,
                        watchdog_ms=args.watchdog_ms, reruns=args.reruns,
                        faults=parse_faults(args.inject_fault) or NO_FAULTS,
                        shrink_causes=not args.no_shrink, predict=lambda p: predict(p, profile),
                        progress=progress, jobs=args.jobs, lanes=args.lanes)
    if not quiet:
        print(f"{args.generate} programs drawn and predicted in {supply.seconds():.1f} s "
              f"({len(set(result.programs))} distinct)", file=sys.stderr)
    if args.json:
        print(report.survey_json(result, not_run))
    else:
        for name, why in not_run.items():
            print(f"{name}: not run ({why})")
        print(report.survey_text(result))
    return EXIT_DIVERGED if report.failed(result.reports) else EXIT_OK


def parse_faults(spec: str | None):
    """--inject-fault: a deliberate bug in the emitted code, to show that the checks catch it."""
    from conformance.lower import Faults
    if not spec:
        return None
    name, _, value = spec.partition("=")
    if name == "drop-sa-onstack" and not value:
        return Faults(drop_sa_onstack=True)
    if name == "corrupt-saved-register" and value:
        return Faults(corrupt_saved_register=value)
    if name == "die-after" and value:
        return Faults(die_after=value)
    if name == "never-end" and not value:
        return Faults(never_end=True)
    if name == "console-garbage" and not value:
        return Faults(console_garbage=True)
    if name == "sigreturn-skips" and value:
        return Faults(sigreturn_skips=value)
    raise UsageError(f"--inject-fault {spec!r}: expected drop-sa-onstack, "
                     "corrupt-saved-register=REG (e.g. x19, rbx), die-after=PROGRAM, never-end, "
                     "console-garbage or sigreturn-skips=REG (with --inject-signal-at)")


def cmd_replay(args) -> int:
    from conformance.lower import NO_FAULTS
    from conformance import bundle, report
    from conformance.check import check
    from oracle import PROFILES, predict
    path = Path(args.bundle)
    if not (path / "bundle.json").is_file():
        raise UsageError(f"{path} is not a reproducer bundle (no bundle.json in it)")
    program, targets, faults = bundle.load_bundle(path)
    runners, not_run = _select_targets(args.targets or ",".join(targets))
    expected = [predict(program, PROFILES[args.profile])]
    if faults is not None:
        print(f"note: re-applying the fault planted when the bundle was made: {faults}")
    reports = [check([program], expected, r, faults=faults or NO_FAULTS) for r in runners]
    print(report.table([program], reports, not_run, show_all=True))
    return EXIT_DIVERGED if report.failed(reports) else EXIT_OK


def cmd_show(args) -> int:
    from conformance.batch import build
    program = _one_program(args.program)
    print(build([program], _abi_for(args)).listing, end="")
    return EXIT_OK


def cmd_emit(args) -> int:
    from conformance.batch import build
    program = _one_program(args.program)
    out = Path(args.output)
    try:
        out.write_bytes(build([program], _abi_for(args)).elf)
        out.chmod(0o755)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc}") from None
    print(f"wrote {out} ({out.stat().st_size} bytes, {args.abi or 'linux-' + args.isa})")
    return EXIT_OK


def cmd_exec(args) -> int:
    from conformance import trace
    from targets.runners import TargetError, get
    try:
        runner = get(args.target)
        elf = Path(args.elf).read_bytes()
        why = runner.unavailable()
        if why:
            raise Unavailable(f"target {runner.name} is not available: {why}" + _enable(runner))
        runner.check(elf, args.elf)
        result = runner.run(elf, args.timeout)
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"{args.elf}: {exc.strerror}") from None
    sys.stdout.write(result.output.decode(errors="replace"))
    parsed = trace.parse(result.output)
    for problem in parsed.problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"exit status {result.returncode}, {result.seconds:.2f} s"
          + (" (killed by the watchdog)" if result.timed_out else ""), file=sys.stderr)
    return EXIT_OK


def cmd_predict(args) -> int:
    from conformance.compare import describe
    from oracle import PROFILES, predict
    program = _one_program(args.program)
    expected = predict(program, PROFILES[args.profile])
    for n, outcome in enumerate(expected.outcomes, start=1):
        print(f"outcome {n} of {len(expected.outcomes)}:")
        for lpid, events in outcome.procs:
            for event in events:
                print(f"  p{lpid}: {describe(event)}")
        for lpid, status in outcome.reaped:
            print(f"  harness reaped p{lpid}: {status}")
        if outcome.hung:
            print("  (hangs: the watchdog fires)")
    for note in expected.notes:
        print(f"note: {note}")
    return EXIT_OK


def cmd_port(args) -> int:
    """`port`: an old x86-64 test ELF as an IR program and an ELF for --to (conformance/port)."""
    from conformance.port import PortError, default_outdir, port, write_outputs
    try:
        image = Path(args.elf).read_bytes()
        result = port(args.elf, image, args.from_abi, args.to, limit_s=args.timeout,
                      explore=args.explore)
    except PortError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"{args.elf}: {exc.strerror}") from None
    outdir = Path(args.output) if args.output else default_outdir(args.elf)
    for path in write_outputs(result, outdir):
        print(f"wrote {path}")
    lifted, agreement = result.lifted, result.agreement
    print(f"{len(lifted.lifted)} syscalls lifted, {len(lifted.symbolic)} operands made symbolic, "
          f"{len(lifted.unliftable)} unliftable; the port "
          + ("keeps the original's observable behaviour" if agreement.agrees else
             "DIFFERS from the original: " + "; ".join(agreement.problems())))
    if result.paths is not None:
        changed = [p for p in result.paths if p.changed]
        print(f"explored {len(result.paths)} forced results: {len(changed)} changed the path "
              f"(OUTDIR/paths/; each needs its forced result: not checkable on a real kernel)")
    return EXIT_OK if agreement.agrees else EXIT_DIVERGED


def cmd_setup(args) -> int:
    from conformance.setup import main_setup
    return main_setup(vm=args.vm, dry_run=args.dry_run)


def cmd_findings(args) -> int:
    from conformance import findings
    for f in findings.load():
        how = f"set aside: {f.tolerate}" if f.tolerate else f"at: {f.call or 'any call'}"
        print(f"{f.id}  [{', '.join(f.targets)}; {how}]\n    {f.why}\n    {f.reference}")
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from conformance.check import DEFAULT_JOBS
    ap = argparse.ArgumentParser(prog="conformance", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("targets", help="list targets: available or not (why, how to enable)")
    run = sub.add_parser("run", help="run a corpus on targets and judge it against the oracle")
    run.add_argument("--targets", help="comma-separated target names (default: every available one)")
    run.add_argument("--corpus", default="all", help="a .prog file, a directory, a built-in corpus name, or all (default: all)")
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    run.add_argument("--all", action="store_true", help="list agreeing programs too")
    run.add_argument("--profile", default="linux", choices=["linux", "posix"], help="oracle profile")
    run.add_argument("--batch-size", type=int, default=100,
                     help="programs per batch ELF (generated batches: at most 10)")
    run.add_argument("--watchdog-ms", type=int, default=2000, help="per-program watchdog")
    run.add_argument("--jobs", type=int,
                     help="batches in flight per target (default: the target's, else "
                          f"{DEFAULT_JOBS}: twice the cores, since batches mostly wait on timers;"
                          " qemu-user 32, as it runs one lane; a Linux VM one per core; the "
                          "reference machine always runs one)")
    run.add_argument("--lanes", type=int,
                     help="programs of a batch run at once, side by side (default: the target's; "
                          "1 runs them one after another; programs that busy-wait run in one "
                          "lane of every eight)")
    run.add_argument("--reruns", type=int, default=5,
                     help="rerun each program that does not agree N times as is and N times with "
                          "yields between ops; the report gives its stability (default 5; 0: off)")
    run.add_argument("--generate", type=int, metavar="N",
                     help="check N generated programs instead of a corpus (shrinks the first failure)")
    run.add_argument("--family", default="all",
                     help="generated programs' family: signals, altstack, timers, pipes, poll, process, registers, all")
    run.add_argument("--max-ops", type=int, default=20, help="largest generated program")
    run.add_argument("--seed", type=int, help="Hypothesis seed (reproducible generation)")
    run.add_argument("--hypothesis-profile", default="dev", choices=["dev", "ci"],
                     help="dev: remember failures in .conformance/ and replay them first; ci: fixed examples")
    run.add_argument("--bundles", default=".conformance/bundles", help="where reproducer bundles go")
    run.add_argument("--keep-going", action="store_true",
                     help="with --generate: draw the programs up front, check them all in large "
                          "batches, group every disagreement into causes and compare the targets")
    run.add_argument("--no-shrink", action="store_true",
                     help="with --keep-going: do not shrink an example of each cause")
    run.add_argument("--inject-fault", metavar="FAULT",
                     help="plant a bug to see it caught: drop-sa-onstack, corrupt-saved-register=REG, "
                          "sigreturn-skips=REG (reference machine, --inject-signal-at); "
                          "or break the run: die-after=PROGRAM (a VM's kernel panics), never-end "
                          "(a VM never powers off), console-garbage")
    run.add_argument("--inject-signal-at", metavar="every|N",
                     help="reference targets only: deliver --inject-signal before every (or every "
                          "Nth) instruction of each program's ops, one run per point, and check "
                          "that nothing but the handler's own record changes")
    run.add_argument("--inject-signal", default="SIGUSR1", metavar="SIG",
                     help="the signal --inject-signal-at delivers (default SIGUSR1); only "
                          "programs that install the recording handler for it are swept")
    for command in (sub.choices["targets"], run):
        command.add_argument("--target-config", action="append", default=[], metavar="TOML",
                             help="add the VM target a TOML file describes (see docs/targets.md); "
                                  "repeatable")
    for name, text in (("show", "print the lowered assembly of a program"),
                       ("emit", "write a program as a standalone static ELF")):
        p = sub.add_parser(name, help=text)
        p.add_argument("program")
        p.add_argument("--isa", default="x86_64", help="x86_64 or aarch64 (ABI linux-<isa>)")
        p.add_argument("--abi", help="an ABI table name instead of --isa, e.g. linux-aarch64")
        if name == "emit":
            p.add_argument("-o", "--output", required=True)
    ex = sub.add_parser("exec", help="run an ELF (e.g. from `emit`) on a target, print its records")
    ex.add_argument("elf")
    ex.add_argument("--target", required=True)
    ex.add_argument("--timeout", type=float, default=60.0)
    ex.add_argument("--target-config", action="append", default=[], metavar="TOML",
                    help="add the VM target a TOML file describes")
    sub.add_parser("findings", help="list the documented target limitations")
    st = sub.add_parser("setup", help="install what the targets need (Debian packages, kernels)")
    st.add_argument("--vm", action="store_true",
                    help="also qemu-system for both ISAs and the Debian cloud kernels (VM targets)")
    st.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    rp = sub.add_parser("replay", help="rerun a reproducer bundle on the targets it failed on")
    rp.add_argument("bundle")
    rp.add_argument("--targets", help="other targets to run it on")
    rp.add_argument("--profile", default="linux", choices=["linux", "posix"])
    po = sub.add_parser("port", help="port an old x86-64 int-0x80 test ELF to another ISA")
    po.add_argument("elf")
    po.add_argument("--from-abi", required=True, metavar="ABI",
                    help="what the test speaks: breenix-legacy, linux-i386, linux-x86_64")
    po.add_argument("--to", default="aarch64", help="an ISA or an ABI table (default aarch64)")
    po.add_argument("-o", "--output", metavar="OUTDIR", help="default: ELF's name + .port")
    po.add_argument("--timeout", type=float, default=10.0,
                    help="seconds (virtual time) the test may run on the reference machine")
    po.add_argument("--explore", action="store_true",
                    help="also rerun the test once per checked result forced to fail "
                         "(ENOSYS, and the call's natural error); variants in OUTDIR/paths/")
    pr = sub.add_parser("predict", help="print the oracle's allowed outcomes for a program")
    pr.add_argument("program")
    pr.add_argument("--profile", default="linux", choices=["linux", "posix"])
    return ap


COMMANDS = {"targets": cmd_targets, "run": cmd_run, "show": cmd_show, "emit": cmd_emit,
            "exec": cmd_exec, "predict": cmd_predict, "findings": cmd_findings,
            "replay": cmd_replay, "setup": cmd_setup, "port": cmd_port}


def _add_target_configs(paths: list[str]) -> None:
    """Make the targets of user config files known (a bad file is a usage error)."""
    from targets.runners import ConfigError, add_config
    for path in paths:
        try:
            add_config(path)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    from conformance.interrupt import stopping_on_interrupt
    args = parser().parse_args(argv)
    try:
        with stopping_on_interrupt():
            _add_target_configs(getattr(args, "target_config", []))
            return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
