"""A fixed list of generated programs, for runs that check many programs without shrinking.

Shrinking needs Hypothesis to drive the test (conformance.explore); measuring agreement does
not, and then programs are drawn up front and checked in large batches: one draw per example
of a generate-only Hypothesis run, reproducible from the seed.
"""
from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, Phase, given, seed as hypothesis_seed, settings

from conformance.ir import Program
from generators._internal.core import programs


def sample(count: int, *, family: str = "all", max_ops: int = 20, seed: int | None = None,
           name: str = "generated") -> list[Program]:
    """`count` programs (fewer only if Hypothesis discards some), named `name/<index>`.

    The same seed gives the same programs; without one, each call draws afresh.
    """
    if count < 1:
        return []
    strategy = programs(family=family, max_ops=max_ops)  # validates the arguments first
    drawn: list[Program] = []

    @settings(database=None, max_examples=count, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(program: Program) -> None:
        drawn.append(program)

    if seed is not None:
        collect = hypothesis_seed(seed)(collect)
    collect()
    return [dataclasses.replace(p, name=f"{name}/{i}") for i, p in enumerate(drawn[:count])]
