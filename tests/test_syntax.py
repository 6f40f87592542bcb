"""The program text format: round trips, operand typing, and golden error messages."""
from __future__ import annotations

from pathlib import Path

import pytest

from conformance import syntax
from conformance.ir import Flags, Op, Ref, walk, child_lpids

ERRORS = Path(__file__).parent / "data" / "errors"
CORPUS = Path(__file__).parent.parent / "conformance" / "corpus"


def test_parses_every_call_with_typed_operands(parse):
    p = parse('''\
        # title line
        r, w = pipe2(O_CLOEXEC|O_NONBLOCK)
        write(w, "hi\\n\\x01")
        write(w, 70000)
        d = dup2(r, 10)
        c = fork {
            kill(parent, SIGUSR1)
            exit(3)
        }
        waitpid(c, WNOHANG)
        waitpid(-1)
        kill(self, 0)
        ''')
    assert p.doc == "title line"
    assert p.body[0] == Op("pipe2", (Flags(("O_NONBLOCK", "O_CLOEXEC")),), ("r", "w"))
    assert p.body[1].args == (Ref("w"), b"hi\n\x01")
    assert p.body[2].args == (Ref("w"), 70000)
    assert p.body[3] == Op("dup2", (Ref("r"), 10), ("d",))
    assert p.body[4].body[0] == Op("kill", (Ref("parent"), "SIGUSR1"))
    assert p.body[5].args == (Ref("c"), Flags(("WNOHANG",)))
    assert p.body[6].args == (-1, Flags())
    assert p.body[7].args == (Ref("self"), 0)


def test_round_trip_keeps_everything(parse):
    p = parse('''\
        # two
        # lines
        r, w = pipe()
        c = fork {
            g = fork {
                write(w, "\\t\\"q\\"\\\\")
            }
            waitpid(g, WUNTRACED|WCONTINUED|0x100)
        }
        ''')
    text = syntax.format(p)
    assert syntax.parse(text) == p
    assert syntax.format(syntax.parse(text)) == text


def test_defaults_are_left_out_when_formatting(parse):
    p = parse("c = fork {\n}\nwaitpid(c, 0)\nr, w = pipe2(0)\n")
    assert syntax.format(p).splitlines()[2:] == ["waitpid(c)", "r, w = pipe2()"]


def test_walk_numbers_ops_and_processes_in_pre_order(parse):
    p = parse("a = fork {\n  getpid()\n  b = fork {\n  }\n}\nc = fork {\n}\n")
    assert [(loc.index, loc.lpid, loc.op.call) for loc in walk(p)] == [
        (0, 0, "fork"), (1, 1, "getpid"), (2, 1, "fork"), (3, 0, "fork")]
    assert child_lpids(p) == {0: 1, 2: 2, 3: 3}


def test_names_are_scoped_per_process(parse):
    with pytest.raises(syntax.ProgramSyntaxError, match="'x' is not bound"):
        parse("c = fork {\n    x = dup(3)\n}\nclose(x)\n")
    # inherited at fork:
    parse("r, w = pipe()\nc = fork {\n    close(r)\n}\n")


@pytest.mark.parametrize("case", sorted(p.stem for p in ERRORS.glob("*.prog")))
def test_golden_error_messages(case):
    path = ERRORS / f"{case}.prog"
    with pytest.raises(syntax.ProgramSyntaxError) as info:
        syntax.parse(path.read_text(), source=path.name)
    assert str(info.value) + "\n" == (ERRORS / f"{case}.err").read_text()


def test_every_corpus_program_round_trips():
    files = sorted(CORPUS.glob("*/*.prog"))
    assert files, "the built-in corpus is empty"
    for path in files:
        p = syntax.parse_file(path)
        assert syntax.parse(syntax.format(p)) == p, path
        assert p.doc, f"{path} has no description"
