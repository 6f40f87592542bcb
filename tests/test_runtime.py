"""The runtime routines are assembled once per ABI and faults, and every batch carries them."""
from __future__ import annotations

import pytest

from conformance.batch import IMAGE_BASE, RUNTIME_AT, build
from conformance.lower import Faults
from conformance.runtime import runtime_for
from targets import tables

ABIS = ("linux-x86_64", "linux-aarch64")


@pytest.mark.parametrize("abi_name", ABIS)
def test_batches_share_one_assembly_of_the_routines(parse, abi_name):
    abi = tables.load(abi_name)
    one = build([parse("getpid()\n")], abi)
    two = build([parse("r, w = pipe()\nwrite(w, \"x\")\n")] * 3, abi, lanes=2)
    assert one.runtime is two.runtime  # cached, not assembled again
    code = one.runtime.code
    for batch in (one, two):
        start = RUNTIME_AT - IMAGE_BASE
        assert batch.elf[start:start + len(code)] == code


@pytest.mark.parametrize("abi_name", ABIS)
def test_labels_are_addresses_inside_the_routines_in_listing_order(abi_name):
    runtime = runtime_for(tables.load(abi_name), address=RUNTIME_AT)
    addresses = list(runtime.routines.values())
    assert addresses[0] == RUNTIME_AT and addresses == sorted(addresses)
    assert all(RUNTIME_AT <= a < runtime.end for a in addresses)
    assert {"rt_record", "rt_handler_plain", "rt_handler_info", "rt_restorer"} <= set(
        runtime.routines)


@pytest.mark.parametrize("abi_name", ABIS)
def test_the_batch_calls_the_routines_by_address_and_shows_them(parse, abi_name):
    batch = build([parse("getpid()\n")], tables.load(abi_name))
    record = f"{batch.runtime.routines['rt_rec']:#x}"
    code = [line for line in batch.code_listing.splitlines() if line.startswith(" ")]
    assert not any("rt_" in line for line in code) and any(record in line for line in code)
    assert "rt_rec:" in batch.listing and f"rt_rec = {record}" in batch.listing


def test_a_fault_that_changes_the_routines_gets_its_own_assembly():
    abi = tables.load("linux-x86_64")
    plain = runtime_for(abi, address=RUNTIME_AT)
    faulty = runtime_for(abi, Faults(corrupt_saved_register="rbx"), address=RUNTIME_AT)
    assert faulty.listing != plain.listing and faulty.code != plain.code
    assert runtime_for(abi, address=RUNTIME_AT + 16).routines["rt_record"] == RUNTIME_AT + 16
