"""Hypothesis strategies for valid, deterministic conformance Programs.

    from generators import programs
    @given(programs(family="signals", max_ops=20))
    def test_something(program): ...

The work happens in `generators._internal`: a model of each process steers step patterns that
are deterministic by construction; the oracle guards the result.
"""
from generators._internal.core import DEFAULT_WEIGHTS, FAMILIES, prediction, programs
from generators.sample import sample

__all__ = ["DEFAULT_WEIGHTS", "FAMILIES", "prediction", "programs", "sample"]
