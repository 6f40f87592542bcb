"""`conformance port`: old x86-64 tests (`int 0x80`, Breenix or i386 numbering, or `syscall`)
ported to another ABI through the IR.

The test runs on the reference machine under its source ABI (`record`), its calls become a
Program (`lift`), the oracle's prediction for that Program is checked against the original
run (`verify`), and the Program is emitted for the target ABI (`command`). `source` refuses
what cannot be ported; `regcheck` reads the machine code after each call for the checks a
trace cannot show; `asm` builds hand-written test sources (tests/data/port/).
"""
from conformance.port.command import Port, default_outdir, port, report_text, write_outputs
from conformance.port.lift import Lifted, Unliftable, lift
from conformance.port.record import CallRecord, Trace, record
from conformance.port.source import SOURCE_ABIS, PortError, SourceElf, load_source
from conformance.port.verify import Agreement, verify

__all__ = ["Port", "port", "write_outputs", "default_outdir", "report_text", "Lifted",
           "Unliftable", "lift", "CallRecord", "Trace", "record", "SOURCE_ABIS", "PortError",
           "SourceElf", "load_source", "Agreement", "verify"]
