"""Record parsing: checksums, noise, interleaving, gaps, duplicates; nothing dropped silently."""
from __future__ import annotations

from conformance import trace


def rec(prog, lpid, seq, kind, fields, data=None):
    """A well-formed record line, built the way the emitted code builds it."""
    body = f"@@cf:{prog:x}.{lpid:x}:{seq:x}:{kind}:" + ",".join(f"{f & (2**64 - 1):x}" for f in fields)
    if data is not None:
        body += ";" + data.hex()
    body += ":"
    return body + f"{sum(body.encode()) & 0xffff:04x}"


def test_parses_records_between_noise_and_orders_by_sequence():
    lines = [rec(0, 0xff, 0, "I", [100]), "[    1.234] random kernel line",
             rec(0, 0xff, 1, "G", [101]), rec(0, 1, 0, "R", [5, 0]),
             "noise before " + rec(0, 0, 1, "R", [2, -9]), rec(0, 0, 0, "R", [1, 5], b"hello")]
    t = trace.parse("\n".join(lines).encode())
    assert t.driver_pid == 100 and t.noise_lines == 1 and not t.problems
    p = t.program(0)
    assert [r.seq for r in p.procs[0]] == [0, 1]
    assert p.procs[0][0].data == b"hello" and p.procs[0][1].fields == (2, -9)
    assert p.started and not p.finished and not p.hung


def test_bad_checksum_is_reported_and_charged_to_the_program():
    good = rec(3, 0, 0, "R", [1, 5])
    bad = good[:-4] + ("0000" if not good.endswith("0000") else "0001")
    t = trace.parse((bad + "\n").encode())
    assert len(t.problems) == 1 and "bad checksum" in t.problems[0]
    assert t.program(3).problems and not t.program(3).procs


def test_truncated_record_and_gaps_and_duplicates():
    lines = [rec(0, 0, 0, "R", [1, 0]), rec(0, 0, 2, "R", [3, 0]), rec(0, 0, 2, "R", [3, 0]),
             "@@cf:0.0:3:R:4,"]
    t = trace.parse("\n".join(lines).encode())
    assert any("malformed" in p for p in t.problems)
    assert any("duplicate" in p for p in t.problems)
    assert t.program(0).problems[0] == "line 4: malformed record"
    assert "records missing (sequence numbers [1])" in t.program(0).problems[1]


def test_record_split_by_kernel_output_is_not_accepted():
    whole = rec(0, 0, 0, "R", [1, 5])
    damaged = whole[:12] + "[ 2.0] reboot: Power down" + whole[12:]
    t = trace.parse(damaged.encode())
    assert t.problems and not t.program(0).procs
