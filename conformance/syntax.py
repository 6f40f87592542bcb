"""The plain-text program format: `parse(format(p)) == p`.

    # Reading a pipe after its last writer closed gives EOF.
    r, w = pipe()
    write(w, "hello")
    close(w)
    read(r, 16)
    c = fork {
        exit(3)
    }
    waitpid(c)

Leading `#` lines are the program's description; other comments and blank lines are ignored.
Errors are `ProgramSyntaxError`s that print as `file:line:col: message`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from conformance.ir import (
    CALLS, DEFAULT_TAIL, FIRST_PROGRAM_FD, HANDLERS, MAX_TRANSFER, NO_MASK, PARENT,
    RESERVED_NAMES, SELF, SIGNAL_NAMES, STACK_SIZES, CallSpec, Flags, Group, Op,
    Operand, Param, PollFd, Program, Ref, Ret, SigSet, StackSize,
)

PROBE = "probe"
# `write` may name these literally: its bytes go to the harness's output between the records
# (what a ported test prints), its record keeps only the count.
CONSOLE_FDS = (1, 2)
# Alternate-stack sizes the ABIs agree on: below every MINSIGSTKSZ, or at least every SIGSTKSZ
# (and within the 64 KiB region the harness reserves for the stack).
STACK_LITERALS = (range(0, 1024), range(32768, 65537))


class ProgramSyntaxError(ValueError):
    """A mistake in program text, located by file, line and column (1-based)."""

    def __init__(self, message: str, line: int, col: int, source: str = "<program>"):
        super().__init__(message)
        self.message, self.line, self.col, self.source = message, line, col, source

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.col}: {self.message}"


_TOKEN = re.compile(r"""
    (?P<ws>[ \t]+)
  | (?P<comment>\#.*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<int>-?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|[0-9]+))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[(),={}|\[\]:-])
""", re.VERBOSE)


@dataclass
class _Tok:
    kind: str
    text: str
    col: int


def _tokenize(line: str, lineno: int, source: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        if not m:
            hint = " (unterminated string?)" if line[pos] == '"' else ""
            raise ProgramSyntaxError(f"unexpected character {line[pos]!r}{hint}",
                                     lineno, pos + 1, source)
        kind = m.lastgroup or ""
        if kind not in ("ws", "comment"):
            toks.append(_Tok(kind, m.group(), pos + 1))
        pos = m.end()
    return toks


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"'}


def _unquote(tok: _Tok, lineno: int, source: str) -> bytes:
    body, out, i = tok.text[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode()
            i += 1
            continue
        esc = body[i + 1]
        if esc in _ESCAPES:
            out += _ESCAPES[esc].encode()
            i += 2
        elif esc == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2:i + 4]):
            out.append(int(body[i + 2:i + 4], 16))
            i += 4
        else:
            raise ProgramSyntaxError(f"unknown escape '\\{esc}' (use \\n \\t \\r \\0 \\\\ \\\" \\xNN)",
                                     lineno, tok.col + 1 + i, source)
    return bytes(out)


class _Scope:
    """Names visible in one process: fd handles and process names."""

    def __init__(self, parent: "_Scope | None", lpid: int):
        self.names: dict[str, str] = dict(parent.names) if parent else {}
        self.lpid = lpid


class _Parser:
    def __init__(self, text: str, source: str):
        self.source = source
        self.lines = text.splitlines()
        self.i = 0
        self.next_lpid = 1

    def error(self, message: str, lineno: int, col: int) -> ProgramSyntaxError:
        return ProgramSyntaxError(message, lineno, col, self.source)

    def parse(self) -> Program:
        doc_lines: list[str] = []
        while self.i < len(self.lines) and self.lines[self.i].lstrip().startswith("#"):
            doc_lines.append(self.lines[self.i].lstrip()[1:].removeprefix(" ").rstrip())
            self.i += 1
        body = self.block(_Scope(None, 0), closing=False)
        if not body:
            raise self.error("empty program: expected at least one call", max(self.i, 1), 1)
        return Program(body=tuple(body), doc="\n".join(doc_lines))

    def block(self, scope: _Scope, closing: bool) -> list[Op]:
        ops: list[Op] = []
        while self.i < len(self.lines):
            lineno = self.i + 1
            toks = _tokenize(self.lines[self.i], lineno, self.source)
            self.i += 1
            if not toks:
                continue
            if toks[0].text == "}":
                if not closing:
                    raise self.error("'}' without a matching 'fork {'", lineno, toks[0].col)
                if len(toks) > 1:
                    raise self.error(f"unexpected {toks[1].text!r} after '}}'", lineno, toks[1].col)
                return ops
            ops.append(self.statement(toks, lineno, scope))
        if closing:
            raise self.error("missing '}' to close a fork body", len(self.lines) + 1, 1)
        return ops

    def statement(self, toks: list[_Tok], lineno: int, scope: _Scope) -> Op:
        probe = toks[0].text == PROBE and len(toks) > 1 and toks[1].kind == "name"
        if probe:
            toks = toks[1:]
        binds: list[_Tok] = []
        if any(t.text == "=" for t in toks):
            k = 0
            while True:
                if toks[k].kind != "name":
                    raise self.error(f"expected a name to bind, got {toks[k].text!r}", lineno, toks[k].col)
                binds.append(toks[k])
                k += 1
                if toks[k].text == "=":
                    break
                if toks[k].text != ",":
                    raise self.error(f"expected ',' or '=', got {toks[k].text!r}", lineno, toks[k].col)
                k += 1
            toks = toks[k + 1:]
            if not toks:
                raise self.error("expected a call after '='", lineno, len(self.lines[lineno - 1]) + 1)
        head = toks[0]
        if head.kind != "name":
            raise self.error(f"expected a call name, got {head.text!r}", lineno, head.col)
        spec = CALLS.get(head.text)
        if spec is None:
            raise self.error(f"unknown call {head.text!r} (known: {', '.join(sorted(CALLS))})",
                             lineno, head.col)
        rest = toks[1:]
        arg_groups: list[list[_Tok]] = []
        if rest and rest[0].text == "(":
            close = next((j for j, t in enumerate(rest) if t.text == ")"), None)
            if close is None:
                raise self.error("missing ')'", lineno, rest[-1].col + len(rest[-1].text))
            inner, rest = rest[1:close], rest[close + 1:]
            if inner:
                group: list[_Tok] = []
                depth = 0
                for t in inner + [_Tok("punct", ",", 0)]:
                    depth += {"[": 1, "]": -1}.get(t.text, 0)
                    if t.text == "," and depth == 0:
                        if not group:
                            raise self.error("empty argument", lineno, t.col or inner[-1].col)
                        arg_groups.append(group)
                        group = []
                    else:
                        group.append(t)
        elif not spec.has_body:
            col = rest[0].col if rest else head.col + len(head.text)
            raise self.error(f"expected '(' after {head.text!r}", lineno, col)
        opens_body = bool(rest) and rest[0].text == "{"
        if opens_body:
            rest = rest[1:]
        if rest:
            raise self.error(f"unexpected {rest[0].text!r}", lineno, rest[0].col)
        if spec.has_body and not opens_body:
            raise self.error(f"{spec.name} needs a body: '{spec.name} {{' ... '}}'", lineno, head.col)
        if opens_body and not spec.has_body:
            raise self.error(f"{spec.name} takes no body", lineno, head.col)

        args = self.arguments(spec, arg_groups, lineno, head, scope)
        names = self.bind(spec, binds, lineno, head, scope)
        body = None
        if spec.has_body:
            child = _Scope(scope, self.next_lpid)
            self.next_lpid += 1
            child.names[PARENT] = "proc"
            body = tuple(self.block(child, closing=True))
        for name in names:
            scope.names[name] = "proc" if spec.binds == "proc" else "fd"
        if probe and spec.ret is Ret.NONE or probe and spec.has_body:
            raise self.error(f"{spec.name} cannot be probed (it does not return once)", lineno, head.col)
        return Op(call=spec.name, args=args, binds=names, body=body, probe=probe)

    def bind(self, spec: CallSpec, binds: list[_Tok], lineno: int, head: _Tok,
             scope: _Scope) -> tuple[str, ...]:
        want = {"": 0, "fd": 1, "fd2": 2, "proc": 1}[spec.binds]
        if len(binds) > want or (spec.bind_required and len(binds) != want):
            shape = {0: "binds no name", 1: "binds one name", 2: "binds two names (read end, write end)"}[want]
            col = binds[0].col if binds else head.col
            raise self.error(f"{spec.name} {shape}, got {len(binds)}", lineno, col)
        for b in binds:
            if b.text in RESERVED_NAMES or b.text in CALLS or _is_constant(b.text):
                raise self.error(f"{b.text!r} cannot be bound: it is a reserved word", lineno, b.col)
        if len(binds) == 2 and binds[0].text == binds[1].text:
            raise self.error(f"{binds[1].text!r} bound twice", lineno, binds[1].col)
        return tuple(b.text for b in binds)

    def arguments(self, spec: CallSpec, groups: list[list[_Tok]], lineno: int, head: _Tok,
                  scope: _Scope) -> tuple[Operand, ...]:
        defaults = DEFAULT_TAIL.get(spec.name, ())
        n, lo = len(spec.params), len(spec.params) - len(defaults)
        if not lo <= len(groups) <= n:
            want = str(n) if lo == n else f"{lo} to {n}"
            noun = "argument" if (lo, n) == (1, 1) else "arguments"
            col = groups[n][0].col if len(groups) > n else head.col
            raise self.error(f"{spec.name} takes {want} {noun}, got {len(groups)}", lineno, col)
        args = [self.operand(p, spec, g, lineno, scope) for p, g in zip(spec.params, groups)]
        args += list(defaults[len(groups) - lo:])
        return tuple(args)

    def operand(self, param: Param, spec: CallSpec, toks: list[_Tok], lineno: int,
                scope: _Scope) -> Operand:
        first = toks[0]
        if param is Param.FLAGS:
            return self.flags(spec, toks, lineno)
        if param is Param.SIGSET or (param is Param.MASK and first.text != NO_MASK):
            return self.sigset(toks, lineno)
        if param is Param.POLLFDS:
            return self.pollfds(spec, toks, lineno, scope)
        if param is Param.STACKSIZE:
            return self.stacksize(toks, lineno)
        if param is Param.TARGET and first.text == "-" and len(toks) == 2:
            ref = self.reference(toks[1], "proc", lineno, scope)
            if ref.name == PARENT and scope.lpid == 0:
                raise self.error("process 0 has no 'parent' in the program", lineno, toks[1].col)
            return Group(ref.name)
        if len(toks) != 1:
            raise self.error(f"unexpected {toks[1].text!r} in {param.value} argument", lineno, toks[1].col)
        if param is Param.DATA:
            if first.kind == "string":
                return _unquote(first, lineno, self.source)
            size = self.integer(first, lineno, f"string or byte count for {spec.name}")
            if not 1 <= size <= MAX_TRANSFER:
                raise self.error(f"byte count must be 1..{MAX_TRANSFER}, got {size}", lineno, first.col)
            return size
        if param is Param.COUNT:
            value = self.integer(first, lineno, "byte count")
            if not 0 <= value <= MAX_TRANSFER:
                raise self.error(f"byte count must be 0..{MAX_TRANSFER}, got {value}", lineno, first.col)
            return value
        if param is Param.CODE:
            value = self.integer(first, lineno, "exit code")
            if not 0 <= value <= 255:
                raise self.error(f"exit code must be 0..255, got {value}", lineno, first.col)
            return value
        if param is Param.SIGNAL:
            if first.kind == "name":
                if first.text not in SIGNAL_NAMES:
                    raise self.error(f"unknown signal {first.text!r}", lineno, first.col)
                return first.text
            value = self.integer(first, lineno, "signal name or number")
            if 1 <= value < 32:
                raise self.error(f"signal {value}: write standard signals by name (SIGTERM), "
                                 "numbers differ between ABIs", lineno, first.col)
            return value
        if param is Param.FD:
            if first.kind == "int":
                value = int(first.text, 0)
                if value in CONSOLE_FDS and spec.name == "write":
                    return value  # output between the records, e.g. a ported test's PASS line
                if 0 <= value < FIRST_PROGRAM_FD:
                    raise self.error(f"fd {value} belongs to the harness (records go to fd 1); "
                                     f"use fds >= {FIRST_PROGRAM_FD} or a handle", lineno, first.col)
                return value
            return self.reference(first, "fd", lineno, scope)
        if param is Param.MASK:
            return NO_MASK
        if param is Param.HANDLER:
            if first.text not in HANDLERS:
                raise self.error(f"expected a handler ({', '.join(HANDLERS)}), got {first.text!r}",
                                 lineno, first.col)
            return first.text
        if param is Param.CHOICE:
            if first.kind == "int":
                return int(first.text, 0)
            if first.text not in spec.choices:
                raise self.error(f"expected one of {', '.join(spec.choices)} for {spec.name}, "
                                 f"got {first.text!r}", lineno, first.col)
            return first.text
        if param in (Param.MILLIS, Param.TIMEOUT):
            value = self.integer(first, lineno, "milliseconds")
            low = -1 if param is Param.TIMEOUT else 0
            if not low <= value <= 10**9:
                raise self.error(f"milliseconds must be {low}..{10**9}, got {value}", lineno, first.col)
            return value
        if param in (Param.TARGET, Param.PGID_PROC) and first.kind == "int":
            if int(first.text, 0) != 0:
                what = "kill" if param is Param.TARGET else spec.name
                raise self.error(f"{what} takes a process name, -name (its group) or 0, got "
                                 f"{first.text} (literal pids could name a host process)",
                                 lineno, first.col)
            return 0
        if param is Param.WAIT_PID and first.kind == "int":
            value = int(first.text, 0)
            if value != -1:
                raise self.error(f"waitpid takes a process name or -1 (any child), got {value}",
                                 lineno, first.col)
            return value
        if first.text == PARENT and scope.lpid == 0:
            raise self.error("process 0 has no 'parent' in the program (its parent is the harness)",
                             lineno, first.col)
        return self.reference(first, "proc", lineno, scope)

    def reference(self, tok: _Tok, kind: str, lineno: int, scope: _Scope) -> Ref:
        if tok.kind != "name":
            raise self.error(f"expected a {kind} name, got {tok.text!r}", lineno, tok.col)
        bound = scope.names.get(tok.text) if tok.text != SELF else "proc"
        if bound is None:
            raise self.error(f"{tok.text!r} is not bound here (bind it first, e.g. "
                             f"{'r, w = pipe()' if kind == 'fd' else 'c = fork { ... }'})",
                             lineno, tok.col)
        if bound != kind:
            words = {"fd": "an fd handle", "proc": "a process name"}
            raise self.error(f"{tok.text!r} is {words[bound]}, expected {words[kind]}",
                             lineno, tok.col)
        return Ref(tok.text)

    def sigset(self, toks: list[_Tok], lineno: int) -> SigSet:
        members: list = []
        for j, t in enumerate(toks):
            if j % 2:
                if t.text != "|":
                    raise self.error(f"expected '|' between signals, got {t.text!r}", lineno, t.col)
                continue
            if t.kind == "int":
                value = int(t.text, 0)
                if value == 0 and len(toks) == 1:
                    return SigSet()
                if not 32 <= value <= 64:
                    raise self.error(f"signal {value} in a set: name standard signals, number only "
                                     "realtime ones (32..64)", lineno, t.col)
                member = value
            elif t.text in SIGNAL_NAMES:
                member = t.text
            else:
                raise self.error(f"unknown signal {t.text!r}", lineno, t.col)
            if member in members:
                raise self.error(f"{t.text} given twice", lineno, t.col)
            members.append(member)
        if len(toks) % 2 == 0:
            raise self.error("signal set ends with '|'", lineno, toks[-1].col)
        return SigSet(_canonical_signals(members))

    def pollfds(self, spec: CallSpec, toks: list[_Tok], lineno: int, scope: _Scope) -> tuple:
        if toks[0].text != "[" or toks[-1].text != "]":
            raise self.error("expected a poll list like [r:POLLIN, w:POLLOUT]", lineno, toks[0].col)
        entries, item = [], []
        for t in toks[1:-1] + [_Tok("punct", ",", toks[-1].col)]:
            if t.text != ",":
                item.append(t)
                continue
            if not item:
                if len(toks) == 2:
                    break
                raise self.error("empty poll entry", lineno, t.col)
            if len(item) < 3 or item[1].text != ":":
                raise self.error("a poll entry is fd:EVENTS, e.g. r:POLLIN", lineno, item[0].col)
            fd = self.operand(Param.FD, spec, item[:1], lineno, scope)
            entries.append(PollFd(fd, self.flags(spec, item[2:], lineno)))
            item = []
        return tuple(entries)

    def stacksize(self, toks: list[_Tok], lineno: int) -> StackSize | int:
        first = toks[0]
        if first.kind == "int" and len(toks) == 1:
            value = int(first.text, 0)
            if not any(value in r for r in STACK_LITERALS):
                raise self.error(f"stack size {value} means different things per ABI: use "
                                 "MINSIGSTKSZ, SIGSTKSZ, MINSIGSTKSZ-1, or a literal below 1024 or "
                                 "from 32768 to 65536", lineno, first.col)
            return value
        if first.text not in STACK_SIZES:
            raise self.error(f"expected a stack size ({', '.join(STACK_SIZES)}, a literal), "
                             f"got {first.text!r}", lineno, first.col)
        if len(toks) == 1:
            return StackSize(first.text)
        if len(toks) == 2 and toks[1].kind == "int" and toks[1].text.startswith("-"):
            return StackSize(first.text, int(toks[1].text, 0))
        raise self.error(f"unexpected {toks[1].text!r} in a stack size", lineno, toks[1].col)

    def flags(self, spec: CallSpec, toks: list[_Tok], lineno: int) -> Flags:
        names: list[str] = []
        bits = 0
        for j, t in enumerate(toks):
            if j % 2:
                if t.text != "|":
                    raise self.error(f"expected '|' between flags, got {t.text!r}", lineno, t.col)
                continue
            if t.kind == "int":
                bits |= int(t.text, 0)
            elif t.text in spec.flag_family:
                if t.text in names:
                    raise self.error(f"flag {t.text} given twice", lineno, t.col)
                names.append(t.text)
            else:
                raise self.error(f"unknown flag {t.text!r} for {spec.name} "
                                 f"(known: {', '.join(spec.flag_family)})", lineno, t.col)
        if len(toks) % 2 == 0:
            raise self.error("flags end with '|'", lineno, toks[-1].col)
        order = {name: k for k, name in enumerate(spec.flag_family)}
        return Flags(tuple(sorted(names, key=order.__getitem__)), bits)

    def integer(self, tok: _Tok, lineno: int, what: str) -> int:
        if tok.kind != "int":
            raise self.error(f"expected {what}, got {tok.text!r}", lineno, tok.col)
        return int(tok.text, 0)


def _canonical_signals(members) -> tuple:
    order = {name: k for k, name in enumerate(SIGNAL_NAMES)}
    names = sorted((m for m in members if isinstance(m, str)), key=order.__getitem__)
    return tuple(names) + tuple(sorted(m for m in members if isinstance(m, int)))


def _is_constant(name: str) -> bool:
    return name.isupper() and "_" in name or name in SIGNAL_NAMES


def parse(text: str, source: str = "<program>") -> Program:
    """Parse program text; raises ProgramSyntaxError naming file, line and column."""
    return _Parser(text, source).parse()


def parse_file(path) -> Program:
    """Parse a .prog file; the program is named after the file."""
    from pathlib import Path
    path = Path(path)
    program = parse(path.read_text(), source=str(path))
    return Program(body=program.body, doc=program.doc, name=path.stem)


def _quote(data: bytes) -> str:
    out = []
    rev = {v: k for k, v in _ESCAPES.items() if k != "0"}
    for b in data:
        ch = chr(b)
        if ch in rev:
            out.append("\\" + rev[ch])
        elif 0x20 <= b < 0x7f:
            out.append(ch)
        else:
            out.append(f"\\x{b:02x}")
    return '"' + "".join(out) + '"'


def format_operand(value: Operand) -> str:
    """One operand as program text."""
    if isinstance(value, Ref):
        return value.name
    if isinstance(value, Group):
        return "-" + value.name
    if isinstance(value, SigSet):
        return "|".join(str(s) for s in value.signals) or "0"
    if isinstance(value, StackSize):
        return value.name + (str(value.delta) if value.delta else "")
    if isinstance(value, tuple):
        return "[" + ", ".join(f"{format_operand(e.fd)}:{format_operand(e.events)}" for e in value) + "]"
    if isinstance(value, Flags):
        parts = list(value.names) + ([hex(value.bits)] if value.bits else [])
        return "|".join(parts) or "0"
    if isinstance(value, bytes):
        return _quote(value)
    return str(value)


def format_op(op: Op, indent: int = 0) -> list[str]:
    """The lines of one op (several for a fork body)."""
    pad = "    " * indent
    defaults = DEFAULT_TAIL.get(op.call, ())
    args = list(op.args)
    while defaults and len(args) > len(op.spec.params) - len(defaults) and \
            args[-1] == defaults[len(args) - 1 - (len(op.spec.params) - len(defaults))]:
        args.pop()
    lhs = ("probe " if op.probe else "") + (", ".join(op.binds) + " = " if op.binds else "")
    if op.body is not None:
        lines = [f"{pad}{lhs}{op.call} {{"]
        for inner in op.body:
            lines += format_op(inner, indent + 1)
        return lines + [pad + "}"]
    return [f"{pad}{lhs}{op.call}({', '.join(format_operand(a) for a in args)})"]


def format(program: Program) -> str:  # noqa: A001 - the module's public verb
    """The program as text; parse(format(p)) == p."""
    lines = [("# " + line).rstrip() for line in program.doc.splitlines()] if program.doc else []
    for op in program.body:
        lines += format_op(op)
    return "\n".join(lines) + "\n"
