"""A fixed list of generated programs, for runs that check many programs without shrinking.

Shrinking needs Hypothesis to drive the test (conformance.explore); measuring agreement does
not, and then programs are drawn up front and checked in large batches: one draw per example
of a generate-only Hypothesis run, reproducible from the seed.
"""
from __future__ import annotations

import dataclasses
import hashlib

from hypothesis import HealthCheck, Phase, given, seed as hypothesis_seed, settings

from conformance.ir import Program
from generators._internal.core import programs

_MIN_TOP_UP = 20  # examples a top-up run asks for beyond those missing, at least
_FRUITLESS_RUNS = 3  # runs in a row that find nothing new: the family has run out


def sample(count: int, *, family: str = "all", max_ops: int = 20, seed: int | None = None,
           name: str = "generated") -> list[Program]:
    """`count` distinct programs, named `name/<index>`; fewer only when the family runs out of
    distinct programs of at most `max_ops` ops (Hypothesis has tried every choice sequence,
    or three runs in a row found nothing new).

    The same seed gives the same programs; without one, each call draws afresh. A
    generate-only Hypothesis run repeats itself: about one example in four is a program it
    has already given (its mutator copies one step over another), so the run asks for more
    than `count` and is topped up by further runs, seeded from the first, until `count`
    distinct programs are in.
    """
    if count < 1:
        return []
    strategy = programs(family=family, max_ops=max_ops)  # validates the arguments first
    distinct: dict[tuple, Program] = {}  # by body, in the order first drawn
    fruitless = attempt = 0
    while len(distinct) < count and fruitless < _FRUITLESS_RUNS:
        before, wanted = len(distinct), count - len(distinct)
        # A run repeats about one example in four: asking for two fifths more than are
        # missing mostly saves a second run (148.6 examples per 100 programs, now 140.7).
        examples = wanted + max(_MIN_TOP_UP, wanted * 2 // 5)
        drawn = _run(strategy, examples, _attempt_seed(seed, attempt))
        for program in drawn:
            distinct.setdefault(program.body, program)
        if len(drawn) < examples and len(distinct) == before:
            break  # Hypothesis ran out of choice sequences: there is nothing more to draw
        fruitless = fruitless + 1 if len(distinct) == before else 0
        attempt += 1
    drawn = list(distinct.values())[:count]
    return [dataclasses.replace(p, name=f"{name}/{i}") for i, p in enumerate(drawn)]


def derived_seed(*parts: int) -> int:
    """A stable 64-bit seed from a few numbers (a shard's, a top-up run's)."""
    text = ":".join(map(str, parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _attempt_seed(seed: int | None, attempt: int) -> int | None:
    """The first run's seed is the caller's; later runs' are derived from both."""
    return seed if seed is None or attempt == 0 else derived_seed(seed, attempt)


def _run(strategy, count: int, seed: int | None) -> list[Program]:
    """The examples of one generate-only Hypothesis run of `count` examples."""
    drawn: list[Program] = []

    @settings(database=None, max_examples=count, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(program: Program) -> None:
        drawn.append(program)

    if seed is not None:
        collect = hypothesis_seed(seed)(collect)
    collect()
    return drawn
