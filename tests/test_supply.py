"""Supply: programs drawn and predicted in worker processes, the same whatever the workers."""
from __future__ import annotations

import pytest
from hypothesis.errors import InvalidArgument

from conformance import supply
from conformance.supply import Supply
from oracle import PROFILES, predict


def test_shards_do_not_depend_on_the_number_of_workers():
    with Supply(25, seed=7, workers=1) as one, Supply(25, seed=7, workers=2) as two:
        assert one.size == two.size == supply.MIN_SHARD
        assert list(one) == list(two)
        assert [p.name for p in two] == [f"generated/{i}" for i in range(25)]


def test_predictions_are_the_oracles_under_the_chosen_profile():
    with Supply(12, seed=1, profile_name="posix") as drawn:
        programs = list(drawn)
        assert list(drawn.expected) == [predict(p, PROFILES["posix"]) for p in programs]
        assert drawn[-1] == programs[11] and drawn[2:4] == programs[2:4]
        with pytest.raises(IndexError):
            drawn[12]
        assert drawn.seconds() > 0 and drawn.finished is not None


def test_other_seeds_draw_other_programs():
    with Supply(10, seed=1) as a, Supply(10, seed=2) as b:
        assert list(a) != list(b)


def test_bad_arguments_fail_before_any_worker_starts():
    with pytest.raises(InvalidArgument):
        Supply(10, family="no-such-family")
    with pytest.raises(ValueError, match="at least one program"):
        Supply(0)


@pytest.mark.parametrize("count,size", [(1, 10), (80, 10), (400, 50), (5000, 100)])
def test_shard_size_depends_on_the_count_only(count, size):
    assert supply.shard_size(count) == size


def test_stop_all_drops_the_shards_not_yet_started():
    from concurrent.futures import CancelledError
    with Supply(1000, seed=1, workers=1) as drawn:  # 10 shards, one drawn at a time
        Supply.stop_all()
        with pytest.raises(CancelledError):
            drawn[999]
